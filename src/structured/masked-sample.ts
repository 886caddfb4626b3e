// Token choice for a grammar-masked row in native code (pds/sample-row.h through ops.sampleRow: the CPU
// backend's sampler, held equal to src/engine/sampler.ts by sampler-native.test.ts): the mask is applied in
// JS (one pass over the row's words), the O(V) exp/sum passes run in C++ (~3x faster than the JS sampler
// on a 152k-token row). For rows without penalties, logprobs or min_tokens masking (backendCanSample).
import { loadNative } from '../native/binding.js';
import type { SamplingParams } from '../engine/protocol.js';
import { applyBitmask } from './apply-bitmask.js';

type NativeSampleRow = (row: Float32Array, p: { temperature: number; topP: number; minP: number; topK: number; u: number }) => number;
let nativeSampleRow: NativeSampleRow | null = null;

/** row: [vocab] logits (modified in place); mask: the grammar's bitmask; u: the request's uniform draw
 * in [0, 1) (unused when greedy). */
export function sampleMaskedRow(row: Float32Array, mask: Int32Array, sp: SamplingParams, u: number): number {
  applyBitmask(row, mask);
  nativeSampleRow ??= loadNative().ops.sampleRow as NativeSampleRow;
  return nativeSampleRow(row, { temperature: sp.temperature, topP: sp.topP, minP: sp.minP, topK: sp.topK, u });
}
