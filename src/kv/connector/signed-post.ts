// A JSON POST from one engine to another's internal route (/v1/kv/...), signed with the internal secret;
// the reply must carry the proof that the callee holds the secret too. Bounded in time; the reply body is
// capped (a hostile peer cannot make us buffer much). Throws on a non-2xx answer, naming its status.
import { AUTH_REPLY_HEADER, checkReplyProof, signRequest } from '../../security/request-signing.js';

const MAX_REPLY_BYTES = 64 * 1024;

export async function signedJsonPost(key: Buffer, host: string, port: number, path: string, payload: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
  const body = JSON.stringify(payload);
  const auth = signRequest(key, 'POST', path, body);
  const timeout = AbortSignal.timeout(timeoutMs);
  const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  const text = await res.text();
  if (text.length > MAX_REPLY_BYTES) throw new Error(`${path}: reply over ${MAX_REPLY_BYTES} bytes`);
  if (!checkReplyProof(key, auth, res.headers.get(AUTH_REPLY_HEADER))) throw new Error(`${path}: the peer did not prove it holds the internal secret (HTTP ${res.status})`);
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const msg = (json as { error?: { message?: unknown } } | null)?.error?.message;
    throw new Error(`${path} answered HTTP ${res.status}${typeof msg === 'string' ? `: ${msg.slice(0, 300)}` : ''}`);
  }
  return json;
}
