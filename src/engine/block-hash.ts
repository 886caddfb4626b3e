// Chained block hash for prefix caching: hash(parent, tokens). Stable across processes (SHA-256,
// little-endian uint32 token ids, no seed), so equal prefixes give equal hashes everywhere.
import { createHash } from 'node:crypto';

/** hex digest of sha256(parentHex bytes || tokens as u32 LE) */
export function blockHash(parent: string | null, tokens: ArrayLike<number>, start: number, end: number): string {
  const h = createHash('sha256');
  if (parent) h.update(Buffer.from(parent, 'hex'));
  const buf = Buffer.allocUnsafe((end - start) * 4);
  for (let i = start; i < end; i++) buf.writeUInt32LE(tokens[i]! >>> 0, (i - start) * 4);
  h.update(buf);
  return h.digest('hex');
}
