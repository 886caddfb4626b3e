// The TypeScript view of the native core (build/pdserve.node). JS holds handles; tensors stay native.
// Everything here is a contract implemented in native/binding/*.cc.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { DType } from '../util/dtype.js';

export type { DType } from '../util/dtype.js';

/** Mirrors pds::ModelSpec (native/include/pds/types.h). */
export interface NativeModelSpec {
  numLayers: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeType: 'default' | 'llama3';
  ropeFactor?: number;
  ropeLowFreqFactor?: number;
  ropeHighFreqFactor?: number;
  ropeOriginalMaxPos?: number;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
  qkNorm: boolean;
  weightDtype: DType;
  /** Dtype HF keeps the rotary inv_freq buffer in (the checkpoint dtype); inv_freq is rounded through it. Default f32. */
  ropeFreqDtype?: DType;
}

export interface BackendOptions {
  device: string; // 'cpu' | 'cuda' | 'cuda:N'
  threads?: number; // CPU threads, 0/undefined = all cores
  cudaLibPath?: string; // build/pdserve_cuda.so, filled in by the wrapper for cuda devices
}

/** One forward pass; see pds::BatchDesc for the meaning of each array. */
export interface ForwardBatch {
  tokenIds: Int32Array; // [T]
  positions: Int32Array; // [T]
  slotMapping: Int32Array; // [T]
  queryStartLoc: Int32Array; // [S+1]
  contextLens: Int32Array; // [S]
  blockTables: Int32Array; // [S * maxBlocksPerSeq]
  maxBlocksPerSeq: number;
  logitsIndices: Int32Array; // [R]
}

/**
 * Token choice per logits row, done by the backend (pds::RowSampling; same semantics as sampleRow in
 * src/engine/sampler.ts without penalties, masks or logprobs). One entry per logits row.
 */
export interface RowSamplingArrays {
  temperature: Float32Array; // < 1e-5: greedy
  topP: Float32Array; // 1 = off
  minP: Float32Array; // 0 = off
  topK: Int32Array; // <= 0 = off
  u: Float32Array; // uniform [0, 1) from the request's RNG
  /** grammar masks (optional): rows of [0, R), ascending, whose token is chosen under masks[m * ceil(vocab / 32) ..]
   * (bit id & 31 of word id >> 5 = allowed; the other ids are -inf in those rows, also in returned logits) */
  maskRows?: Int32Array;
  masks?: Int32Array;
}

/** n rows of greedy token choice (every other field at its "off" value); planners overwrite what they need. */
export function greedyRows(n: number): RowSamplingArrays {
  return { temperature: new Float32Array(n), topP: new Float32Array(n).fill(1), minP: new Float32Array(n), topK: new Int32Array(n), u: new Float32Array(n) };
}

export interface NativeModel {
  readonly deviceName: string;
  /** Reads nbytes at `offset` of `path` straight into device memory (no JS heap), converting dtype. */
  loadTensor(name: string, path: string, offset: number, nbytes: number, dtype: DType, shape: number[]): void;
  initDummyWeights(seed: number): void;
  finalizeWeights(): void;
  weightBytes(): number;
  allocKvCache(numBlocks: number, blockSize: number, kvDtype: DType): void;
  /** All layers, K and V, in the dtype of the last allocKvCache (f32 before the first): size the cache with
   *  layers * 2 * numKvHeads * headDim * dtypeBytes when it is not allocated yet. */
  kvBytesPerToken(): number;
  /** Page-locks the view's bytes for the device's KV transfers (cuda; false on cpu or failure). Synchronous. */
  registerHostMemory(view: Uint8Array): boolean;
  /** Undoes registerHostMemory; call before the memory is unmapped or freed. */
  unregisterHostMemory(view: Uint8Array): void;
  /** Measured limits of the model's device (GPU: copy bandwidth, GEMM peak in the weight dtype); null on cpu. */
  measureDeviceLimits(): { readBandwidthGBs: number; matmulPeakGflops: number } | null;
  freeMemoryBytes(): number;
  /** Runs on a native worker thread; resolves with float32 logits [R, vocab]. One at a time per model. */
  forward(batch: ForwardBatch): Promise<Float32Array>;
  /** forward, then the backend picks each row's token; logits come back only when wantLogits (else null). */
  forwardSample(batch: ForwardBatch, sampling: RowSamplingArrays, wantLogits: boolean): Promise<{ tokens: Int32Array; logits: Float32Array | null }>;
  /** [layers, 2, numTokens, kv_heads, head_dim] in the KV dtype, written at dst[0..]. Async, off the event loop. */
  kvGather(blockIds: Int32Array, numTokens: number, dst: Uint8Array): Promise<void>;
  kvScatter(blockIds: Int32Array, numTokens: number, src: Uint8Array): Promise<void>;
  /**
   * KV peer transfer (GPU to GPU on one host; CUDA IPC). Devices without it (cpu) throw
   * "not supported on this device". kvExportIpc: opaque handle of this model's KV allocation (after
   * allocKvCache). kvImportPeer: maps a peer's handle (cached per handle), returns the peer index; throws
   * on a layout mismatch or when the GPUs cannot reach each other. kvCopyFromPeer: all layers' K and V
   * of peer blocks src[i] into local blocks dst[i], one batched device copy, off the event loop.
   */
  kvExportIpc?(): Buffer;
  /** The KV cache's host memory viewed in place (cpu), null on a device; valid until dispose(). */
  kvHostRegion?(): Uint8Array | null;
  kvImportPeer?(handle: Uint8Array): number;
  kvCopyFromPeer?(peer: number, srcBlocks: Int32Array, dstBlocks: Int32Array): Promise<void>;
  /** Frees device memory now (the model is unusable afterwards). */
  dispose(): void;
}

export interface NativeBinding {
  createModel(spec: NativeModelSpec, opts: BackendOptions): NativeModel;
  /** mmap(MAP_SHARED) of a file (created and sized when create=true); the ArrayBuffer aliases the mapping. */
  mapShared(path: string, size: number, create: boolean): ArrayBuffer;
  /** Measured limits, for benchmark ratios. */
  measureMemcpy(bytes: number, iters: number): number; // GB/s, single thread, bytes copied per second
  measureReadBandwidth(bytes: number, iters: number, threads: number): number; // GB/s of read traffic
  measureMatmulPeak(threads: number): number; // GFLOP/s of the best f32 matmul kernel on cache-resident data
  /** Kernel entry points for tests (CPU; and cuda when built): float32 in/out. */
  ops: Record<string, (...args: unknown[]) => unknown>;
  cpuFeatures(): string[];
}

const here = dirname(fileURLToPath(import.meta.url));
let cached: NativeBinding | undefined;

/** Path of a file under build/ of the package root (dist/src/native -> ../../../build). */
export function buildPath(file: string): string {
  for (const up of ['../../../build', '../../build']) {
    const p = join(here, up, file);
    if (existsSync(p)) return p;
  }
  return join(here, '../../../build', file);
}

export function loadNative(): NativeBinding {
  if (cached) return cached;
  const p = buildPath('pdserve.node');
  if (!existsSync(p)) throw new Error(`native core not built (${p} missing): run npm install`);
  const require = createRequire(import.meta.url);
  cached = require(p) as NativeBinding;
  return cached;
}
