// Chained chunk hashes: the same function keys KV chunks across processes/hosts and the engine's
// prefix cache (anchors §3, complaint §8.1: no per-process seed, ever). chainHash itself lives in
// src/util/chain-hash.ts (its byte-level definition is there); this file adds the model root and chunking.
//
//   modelFingerprint(id) = chainHash(null, [], canonical(id)) where canonical(id) is the UTF-8 of
//       "name=<name>\narch=<architecture>\ndtype=<dtype>\nlayers=<n>\nkv_heads=<n>\nhead_dim=<n>\nkv_dtype=<dt>"
//   chunk keys of a prompt, chunk size C:  key_0 = chainHash(modelFingerprint(id), tokens[0:C]),
//       key_i = chainHash(key_{i-1}, tokens[iC:(i+1)C]); the last partial chunk (if any, and if asked for)
//       is hashed the same way over its shorter token list (its length is part of the hash).
import { chainHash } from '../util/chain-hash.js';

export { chainHash, KEY_BYTES } from '../util/chain-hash.js';

/** What makes KV bytes of the same tokens interchangeable between two engines. */
export interface ModelIdentity {
  name: string;
  architecture: string; // e.g. "Qwen3ForCausalLM"
  dtype: string; // weight dtype
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  kvDtype: string; // 'f32' | 'f16' | 'bf16'
}

export function modelFingerprint(id: ModelIdentity): Buffer {
  const canonical =
    `name=${id.name}\narch=${id.architecture}\ndtype=${id.dtype}\nlayers=${id.numLayers}\n` +
    `kv_heads=${id.numKvHeads}\nhead_dim=${id.headDim}\nkv_dtype=${id.kvDtype}`;
  return chainHash(null, [], canonical);
}

/** One chunk of a prompt: tokens [start, end) and its key (hex of the 32-byte hash). */
export interface ChunkRef {
  key: string;
  start: number;
  end: number;
}

/**
 * Keys of the chunks of `tokens`, in order. Full chunks always; the trailing partial chunk only when
 * includePartial. `root` is modelFingerprint(identity) (pass it precomputed: it is constant per model).
 */
export function chunkKeys(root: Buffer, tokens: ArrayLike<number>, chunkSize: number, includePartial: boolean): ChunkRef[] {
  const out: ChunkRef[] = [];
  let parent = root;
  const n = tokens.length;
  const sliceOf = (a: number, b: number): ArrayLike<number> =>
    Array.isArray(tokens) || ArrayBuffer.isView(tokens) ? (tokens as unknown as number[]).slice(a, b) : Array.from({ length: b - a }, (_, i) => tokens[a + i]!);
  for (let start = 0; start < n; start += chunkSize) {
    const end = Math.min(n, start + chunkSize);
    if (end - start < chunkSize && !includePartial) break;
    parent = chainHash(parent, sliceOf(start, end));
    out.push({ key: parent.toString('hex'), start, end });
  }
  return out;
}
