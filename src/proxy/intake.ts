// The proxy's request intake: what it accepts from a client and what it sends upstream in its own name.
// - the body must be a JSON object nested at most MAX_JSON_DEPTH deep (else 400, never a stack overflow);
// - kv_transfer_params and decode_limits from the client are dropped: the prefill leg carries only what
//   the proxy sets, the decode leg only what the prefiller returned (vLLM strips them the same way);
// - the client's Authorization never goes upstream: the proxy's own credential does (an internal
//   signature per attempt when it holds the secret, and/or --upstream-api-key).
import type { ProxyConfig } from './config.js';
import type { JsonObject } from './prefill-body.js';
import { signRequest } from '../security/request-signing.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../util/json-guard.js';

/** The parsed body, or the 400 message. */
export function parseClientBody(raw: unknown): JsonObject | string {
  if (!Buffer.isBuffer(raw) || raw.length === 0) return 'request body must be a JSON object';
  if (jsonTooDeep(raw)) return `request body nests deeper than ${MAX_JSON_DEPTH} levels`;
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return 'request body must be a JSON object';
    return v as JsonObject;
  } catch (e) {
    return `request body is not valid JSON: ${(e as Error).message}`;
  }
}

/** Fields only pdserve processes may set. */
const PEER_FIELDS = ['kv_transfer_params', 'decode_limits'] as const;

/** The body without peer-only fields; `stripped` says whether anything was removed. */
export function stripPeerFields(body: JsonObject): { body: JsonObject; stripped: boolean } {
  if (!PEER_FIELDS.some((k) => k in body)) return { body, stripped: false };
  const out = { ...body };
  for (const k of PEER_FIELDS) delete out[k];
  return { body: out, stripped: true };
}

/** Static upstream headers: the proxy's own Bearer key when configured. */
export function upstreamCredentials(c: Pick<ProxyConfig, 'upstreamApiKey'>): Record<string, string> {
  return c.upstreamApiKey ? { authorization: `Bearer ${c.upstreamApiKey}` } : {};
}

/** Per-attempt headers for POST path: base + credentials + a fresh signature over this body. */
export function upstreamHeadersFor(c: Pick<ProxyConfig, 'upstreamApiKey' | 'internalKey'>, path: string, base: Record<string, string>) {
  const creds = upstreamCredentials(c);
  return (body: string): Record<string, string> => ({
    ...base,
    ...creds,
    ...(c.internalKey ? signRequest(c.internalKey, 'POST', path, body) : {}),
  });
}
