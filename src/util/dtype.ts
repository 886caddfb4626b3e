// The one dtype module: the element types the native core computes in, their names in flags and config
// files, their sizes, and the safetensors dtype table. Used by the CLI, the model loader and the engine.

/** Element types of weights, activations and the KV cache (native pds::DType), in their short names. */
export const DTYPES = ['f32', 'f16', 'bf16'] as const;
export type DType = (typeof DTYPES)[number];

/** Bytes per element: the one size table (safetensorsDtypeBytes below agrees for F32/F16/BF16). */
export const dtypeBytes: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2 };

/** True for a short dtype name exactly (f32 | f16 | bf16; flags of the benchmarks, KV identities). */
export function isDType(v: unknown): v is DType {
  return typeof v === 'string' && (DTYPES as readonly string[]).includes(v);
}

/** Bytes one token of KV takes in a paged cache: every layer, K and V, numKvHeads * headDim elements. */
export function kvBytesPerToken(numLayers: number, numKvHeads: number, headDim: number, kvDtype: DType): number {
  return numLayers * 2 * numKvHeads * headDim * dtypeBytes[kvDtype];
}

const names: Readonly<Record<string, DType>> = {
  f32: 'f32', float32: 'f32', float: 'f32',
  f16: 'f16', float16: 'f16', half: 'f16',
  bf16: 'bf16', bfloat16: 'bf16',
};

/**
 * A dtype name as flags and config.json write it (case-insensitive; an optional `torch.` prefix):
 * f32 | float32 | float, f16 | float16 | half, bf16 | bfloat16. Null when it names none of them.
 */
export function dtypeFromName(v: string): DType | null {
  return names[v.toLowerCase().replace(/^torch\./, '')] ?? null;
}

/** --dtype / --kv-cache-dtype: 'auto' or a dtype name. Throws an Error naming the accepted values. */
export function parseDtypeOption(v: string): DType | 'auto' {
  if (v.toLowerCase() === 'auto') return 'auto';
  const d = dtypeFromName(v);
  if (!d) throw new Error(`unsupported dtype "${v}" (auto, float32, float16, bfloat16)`);
  return d;
}

/** Element sizes of every dtype the safetensors format defines; only F32 / F16 / BF16 load as weights. */
export const safetensorsDtypeBytes: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1,
};

/** The DType a safetensors tensor of this dtype loads as, or null when it cannot be a weight. */
export function dtypeFromSafetensors(v: string): DType | null {
  return v === 'F32' ? 'f32' : v === 'F16' ? 'f16' : v === 'BF16' ? 'bf16' : null;
}
