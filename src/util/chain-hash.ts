// The chained hash both the engine's prefix cache (src/engine/block-hash.ts) and the KV layer's chunk
// keys (src/kv/chunk-hash.ts) are built on. Neutral ground: it imports nothing of either.
//
// Algorithm (version 1; changing any byte here must change the pinned keys in src/kv/chunk-hash.test.ts):
//   chainHash(parent, tokens, extra) = SHA-256(
//       "pdkv1"                                  5 ASCII bytes (domain + version)
//       parent                                   32 bytes; 32 zero bytes when parent is null
//       u32le(tokens.length)
//       u32le(token) for each token              token ids must be integers in [0, 2^32)
//       u32le(extra.length) extra                only when extra is given (Buffer, or UTF-8 of a string)
//   )  -> 32-byte Buffer
import { createHash } from 'node:crypto';

export const KEY_BYTES = 32;
const DOMAIN = Buffer.from('pdkv1', 'ascii');
const ZERO = Buffer.alloc(KEY_BYTES);

export function chainHash(parent: Buffer | null, tokens: ArrayLike<number>, extra?: Buffer | string): Buffer {
  if (parent !== null && parent.length !== KEY_BYTES) throw new RangeError(`chainHash: parent must be ${KEY_BYTES} bytes`);
  const n = tokens.length;
  const body = Buffer.allocUnsafe(4 + 4 * n);
  body.writeUInt32LE(n, 0);
  for (let i = 0; i < n; i++) {
    const t = tokens[i]!;
    if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new RangeError(`chainHash: bad token id ${t} at ${i}`);
    body.writeUInt32LE(t, 4 + 4 * i);
  }
  const h = createHash('sha256').update(DOMAIN).update(parent ?? ZERO).update(body);
  if (extra !== undefined) {
    const e = typeof extra === 'string' ? Buffer.from(extra, 'utf8') : extra;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(e.length, 0);
    h.update(len).update(e);
  }
  return h.digest();
}
