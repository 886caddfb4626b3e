// Signed HTTP requests between pdserve processes (internal endpoints such as /v1/kv/release and /debug/*,
// and peer-originated fields such as kv_transfer_params on a decode leg). The signature covers method,
// path, a timestamp, a nonce and the body's SHA-256, so it cannot be moved to another request; the
// verifier keeps the nonces it saw within the clock window, so it cannot be replayed either. The reply
// carries a proof over the request's signature, so the caller knows the server holds the secret too.
//
// Request header:  x-pdserve-auth: v1 ts=<unix ms> nonce=<32 hex> sig=<64 hex>
// Reply header:    x-pdserve-auth-reply: <64 hex> = H("pds-http-reply", sig)
import { createHash, randomBytes } from 'node:crypto';
import { hmac, sameBytes } from './hmac.js';

export const AUTH_HEADER = 'x-pdserve-auth';
export const AUTH_REPLY_HEADER = 'x-pdserve-auth-reply';
/** A signature older or newer than this (clock skew included) is refused. */
export const SIGNATURE_WINDOW_MS = 60_000;

function bodyDigest(body: string | Buffer | Uint8Array | undefined | null): Buffer {
  const h = createHash('sha256');
  if (body != null) h.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return h.digest();
}

function requestMac(key: Buffer, method: string, path: string, ts: string, nonce: string, body: Buffer): Buffer {
  return hmac(key, 'pds-http-request', method.toUpperCase(), path, ts, nonce, body);
}

/** Headers to add to an outgoing request. path = the request target ("/v1/kv/release?x=1"). */
export function signRequest(
  key: Buffer,
  method: string,
  path: string,
  body?: string | Buffer | Uint8Array | null,
  now = Date.now(),
): Record<string, string> {
  const ts = String(now);
  const nonce = randomBytes(16).toString('hex');
  const sig = requestMac(key, method, path, ts, nonce, bodyDigest(body)).toString('hex');
  return { [AUTH_HEADER]: `v1 ts=${ts} nonce=${nonce} sig=${sig}` };
}

export type VerifyResult = { ok: true; replyProof: string } | { ok: false; reason: string };

/** Remembers nonces seen inside the window (bounded: entries expire with the window). */
export class NonceCache {
  private readonly seen = new Map<string, number>(); // nonce -> expiry (ms)
  constructor(private readonly maxEntries = 100_000) {}
  /** false if the nonce was already used (a replay) or the cache is full of live nonces. */
  add(nonce: string, expiry: number, now: number): boolean {
    if (this.seen.has(nonce)) return false;
    if (this.seen.size >= this.maxEntries) {
      for (const [n, exp] of this.seen) if (exp <= now) this.seen.delete(n);
      if (this.seen.size >= this.maxEntries) return false;
    }
    this.seen.set(nonce, expiry);
    return true;
  }
  get size(): number {
    return this.seen.size;
  }
}

/** Checks an incoming request's x-pdserve-auth header. */
export function verifyRequest(
  key: Buffer,
  method: string,
  path: string,
  header: string | string[] | undefined,
  body: string | Buffer | Uint8Array | undefined | null,
  nonces: NonceCache,
  now = Date.now(),
): VerifyResult {
  if (typeof header !== 'string') return { ok: false, reason: 'missing internal signature' };
  const m = /^v1 ts=(\d{1,16}) nonce=([0-9a-f]{32}) sig=([0-9a-f]{64})$/.exec(header);
  if (!m) return { ok: false, reason: 'malformed internal signature' };
  const [, ts, nonce, sigHex] = m;
  if (Math.abs(now - Number(ts)) > SIGNATURE_WINDOW_MS) return { ok: false, reason: 'internal signature expired' };
  const want = requestMac(key, method, path, ts!, nonce!, bodyDigest(body));
  if (!sameBytes(want, Buffer.from(sigHex!, 'hex'))) return { ok: false, reason: 'bad internal signature' };
  if (!nonces.add(nonce!, Number(ts) + SIGNATURE_WINDOW_MS, now)) return { ok: false, reason: 'replayed internal signature' };
  return { ok: true, replyProof: hmac(key, 'pds-http-reply', sigHex!).toString('hex') };
}

/** The caller's check of a reply: the server proved it holds the secret for this very request. */
export function checkReplyProof(key: Buffer, requestHeaders: Record<string, string>, replyHeader: string | string[] | undefined | null): boolean {
  const m = /sig=([0-9a-f]{64})$/.exec(requestHeaders[AUTH_HEADER] ?? '');
  if (!m || typeof replyHeader !== 'string' || !/^[0-9a-f]{64}$/.test(replyHeader)) return false;
  return sameBytes(hmac(key, 'pds-http-reply', m[1]!), Buffer.from(replyHeader, 'hex'));
}
