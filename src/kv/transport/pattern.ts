// Deterministic KV bytes for transport tests and benchmarks: word i of a region = hash(seed, i), so two
// processes (or two namespaces) compute the same expected bytes without sending them. A shape names a
// synthetic region (a model's KV geometry and a block count).
import type { KvIdentity, KvRegion } from './transport.js';
import { dtypeBytes, isDType } from '../../util/dtype.js';

export function fillPattern(bytes: Uint8Array, seed: number): void {
  const w = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i ^ seed, 2654435761) ^ (seed << 7);
}

export interface PeerShape extends KvIdentity {
  numBlocks: number;
}

export function regionOfShape(s: PeerShape, seed: number): KvRegion {
  const rowBytes = s.numKvHeads * s.headDim * (isDType(s.kvDtype) ? dtypeBytes[s.kvDtype] : 2);
  const layout = { numBlocks: s.numBlocks, blockSize: s.blockSize, numLayers: s.numLayers, rowBytes };
  const bytes = new Uint8Array(2 * s.numLayers * s.numBlocks * s.blockSize * rowBytes);
  if (seed) fillPattern(bytes, seed);
  else bytes.fill(0x5a);
  const { numBlocks: _n, ...identity } = s;
  return { identity, layout, bytes };
}

