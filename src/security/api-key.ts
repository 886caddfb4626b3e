// Users' API keys, vLLM's way: `--api-key KEY` (or $PDSERVE_API_KEY, vLLM's VLLM_API_KEY too) guards /v1/*;
// a request must send `Authorization: Bearer KEY`. Several keys may be configured (any one admits).
import { createHash } from 'node:crypto';
import { sameBytes } from './hmac.js';

export const API_KEY_ENV = 'PDSERVE_API_KEY';
export const VLLM_API_KEY_ENV = 'VLLM_API_KEY';

/** The configured keys: the flag's values if any, else the env var (one key), else none (open). */
export function resolveApiKeys(flag: string | string[] | undefined | null, env: NodeJS.ProcessEnv = process.env): string[] {
  const list = flag == null ? [] : Array.isArray(flag) ? flag : [flag];
  const keys = list.filter((k) => k.length > 0);
  if (keys.length) return keys;
  const fromEnv = env[API_KEY_ENV] || env[VLLM_API_KEY_ENV];
  return fromEnv ? [fromEnv] : [];
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Checks an Authorization header against the keys in constant time per key. */
export class ApiKeyGuard {
  private readonly digests: Buffer[];
  constructor(keys: string[]) {
    this.digests = keys.map(digest);
  }
  get enabled(): boolean {
    return this.digests.length > 0;
  }
  /** true when open (no keys) or the header is `Bearer <one of the keys>`. */
  admits(authorization: string | string[] | undefined): boolean {
    if (!this.enabled) return true;
    if (typeof authorization !== 'string') return false;
    const m = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (!m) return false;
    const d = digest(m[1]!);
    let ok = false;
    for (const k of this.digests) ok = sameBytes(k, d) || ok; // no early exit
    return ok;
  }
}
