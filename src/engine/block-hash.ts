// Block hashes for prefix caching: the shared chained hash (src/util/chain-hash.ts, also the KV layer's
// chunk key function) over one block of tokens, hex-encoded for use as a map key. Stable across
// processes (no seed).
import { chainHash } from '../util/chain-hash.js';

export function blockHash(parent: string | null, tokens: ArrayLike<number>, start: number, end: number): string {
  const slice = Array.prototype.slice.call(tokens, start, end) as number[];
  return chainHash(parent ? Buffer.from(parent, 'hex') : null, slice).toString('hex');
}
