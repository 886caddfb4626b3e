// Chained chunk hashes: the same function keys KV chunks across processes/hosts and the engine's
// prefix cache (anchors §3, complaint §8.1: no per-process seed, ever).
//
// Algorithm (version 1; changing any byte here must change the pinned keys in chunk-hash.test.ts):
//   chainHash(parent, tokens, extra) = SHA-256(
//       "pdkv1"                                  5 ASCII bytes (domain + version)
//       parent                                   32 bytes; 32 zero bytes when parent is null
//       u32le(tokens.length)
//       u32le(token) for each token              token ids must be integers in [0, 2^32)
//       u32le(extra.length) extra                only when extra is given (Buffer, or UTF-8 of a string)
//   )  -> 32-byte Buffer
//   modelFingerprint(id) = chainHash(null, [], canonical(id)) where canonical(id) is the UTF-8 of
//       "name=<name>\narch=<architecture>\ndtype=<dtype>\nlayers=<n>\nkv_heads=<n>\nhead_dim=<n>\nkv_dtype=<dt>"
//   chunk keys of a prompt, chunk size C:  key_0 = chainHash(modelFingerprint(id), tokens[0:C]),
//       key_i = chainHash(key_{i-1}, tokens[iC:(i+1)C]); the last partial chunk (if any, and if asked for)
//       is hashed the same way over its shorter token list (its length is part of the hash).
import { createHash } from 'node:crypto';

export const KEY_BYTES = 32;
const DOMAIN = Buffer.from('pdkv1', 'ascii');
const ZERO = Buffer.alloc(KEY_BYTES);

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
