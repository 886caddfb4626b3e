// Launchers of the CUDA backend's kernels (one kernel per .cu file). Type-erased: element type given as
// DType, buffers as device pointers. All launches go on `stream` and are asynchronous; each launcher
// throws std::runtime_error on a launch error or an unsupported shape/dtype.
// Row-major shapes throughout; "T" = tokens, "H" = hidden, "D" = head_dim.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "pds/types.h"

namespace pds::cuda {

// out[t, :] = table[ids[t], :] for t < T. An id outside [0, vocab) writes zeros and sets *errFlag = 1.
// table in t; out in outT (t, or f32).
void launchEmbedding(DType t, DType outT, const int32_t* ids, int T, const void* table, int vocab, int hidden,
                     void* out, int* errFlag, cudaStream_t s);

// For r < rows, with src = rowIdx ? rowIdx[r] : r:
//   v = x[src] (+ addend[src], rounded to T; then x[src] = v)   out[r] = v * rsqrt(mean(v^2) + eps) * w
// hidden must be a multiple of 16 / sizeof(T).
void launchRmsNorm(DType t, void* x, const void* addend, const void* w, void* out, const int32_t* rowIdx, int rows,
                   int hidden, float eps, cudaStream_t s);

// Fused per-token attention input prep on qkv [T, (nH + 2 nKV) * D] (q heads, then k heads, then v heads):
//   + bias (if given, [(nH+2nKV)*D]); q/k RMSNorm over D with qNormW/kNormW [D] (if given);
//   RoPE on q and k: NeoX pairs (i, i + D/2), angle = positions[t] * invFreq[i] (invFreq [D/2] f32);
//   q written back in place; k, v written to kCache/vCache [slots, nKV, D] at slot slots[t] (skipped if < 0).
void launchQkvPrep(DType t, void* qkv, int T, int nH, int nKV, int D, const void* bias, const void* qNormW,
                   const void* kNormW, float eps, const float* invFreq, const int32_t* positions,
                   const int32_t* slots, void* kCache, void* vCache, cudaStream_t s);

// out[t, i] = silu(gu[t, i]) * gu[t, I + i]   (gu [T, 2I], out [T, I]); vectorized when I allows.
void launchSiluMul(DType t, const void* gu, void* out, int T, int I, cudaStream_t s);

// Per-token paged attention (decode, and any prefill as a fallback). Token t (query rows q + t*qStride,
// nH heads of D) attends causally to the first tokenCtx[t] cached tokens of sequence tokenSeq[t], whose
// blocks are blockTables[tokenSeq[t] * btStride + j]. Cache planes [blocks*blockSize, nKV, D].
// The context is cut in splits of splitSize tokens (a multiple of 32); grid covers maxSplits splits, so
// maxSplits * splitSize must be >= every tokenCtx. Workspace: wsO [T, nH, maxSplits, D] f32,
// wsML [T, nH, maxSplits, 2] f32. Output out [T, nH * D]. Launches the split kernel, then the combine.
struct PagedAttnArgs {
  const void* q; int qStride;
  const void* kCache; const void* vCache;
  const int32_t* blockTables; int btStride;
  const int32_t* tokenSeq; const int32_t* tokenCtx;
  int T, nH, nKV, D, blockSize;
  float scale;
  int maxSplits, splitSize;
  float* wsO; float* wsML;
  void* out;
  // launchPagedAttentionFused only: [T, nKV * ceil(G / min(G, 8))] ints, all 0 before the launch and
  // left 0 after it (G = nH / nKV). Not needed when maxSplits == 1.
  int* counters = nullptr;
};
void launchPagedAttention(DType t, const PagedAttnArgs& a, cudaStream_t s);
// Second pass of launchPagedAttention: merges the splits of each (token, head) into out.
void launchAttentionCombine(DType t, const PagedAttnArgs& a, cudaStream_t s);
// The same attention in one launch (decode path): K and V of a split loaded together, and the last split
// of each (token, kv head group) to finish merges the splits (through wsO/wsML and counters). Any
// splitSize >= 1.
void launchPagedAttentionFused(DType t, const PagedAttnArgs& a, cudaStream_t s);
// Keys one block of the fused kernel loads per pass: split sizes are best a multiple of this.
int pagedAttentionKeysPerPass(DType t, int D, int nH, int nKV);
// Whether the fused kernel runs on tensor cores for this KV dtype and head_dim (f16/bf16, D 64 or 128).
bool pagedAttentionTensorCores(DType t, int D);
// Split size for the fused kernel: T query tokens, contexts up to ctxCap, numSms SMs.
int pagedAttentionFusedSplit(DType t, int D, int nH, int nKV, int T, int ctxCap, int numSms);
// Counter ints launchPagedAttentionFused needs per token.
inline int pagedAttentionCountersPerToken(int nH, int nKV) {
  const int G = nH / nKV, mg = G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : 8;
  return nKV * ((G + mg - 1) / mg);
}

// Tiled causal prefill attention on tensor cores (f16/bf16, D in {64, 128}). Work items tiles[2*i] = sequence,
// tiles[2*i+1] = first query row within that sequence's new rows (a multiple of 64). Sequence s's new rows
// are [queryStartLoc[s], queryStartLoc[s+1]) and sit at the end of its contextLens[s] cached tokens.
struct PrefillAttnArgs {
  const void* q; int qStride;
  const void* kCache; const void* vCache;
  const int32_t* blockTables; int btStride;
  const int32_t* tiles; int numTiles;
  const int32_t* queryStartLoc; const int32_t* contextLens;
  int nH, nKV, D, blockSize;
  float scale;
  void* out;
};
constexpr int kPrefillTileRows = 64;
bool prefillAttentionSupported(DType t, int D);
// prefill-attention.cu: runs launchPrefillAttentionMma (the default: mma.sync, register-resident P, cp.async
// K/V ring), or the fallback launchPrefillAttentionWmma (prefill-attention-wmma-fallback.cu) when the
// environment has PDSERVE_PREFILL_ATTN=wmma. Both: same arguments and results.
void launchPrefillAttention(DType t, const PrefillAttnArgs& a, cudaStream_t s);
// headsPerBlock: 0 = the kernel's choice (2 query heads of one kv head per block when nH / nKV is even), 1 = one.
// order (which blocks start first): -1 = the kernel's choice, 0 = most keys first, 1 = heavy/light zigzag.
void launchPrefillAttentionMma(DType t, const PrefillAttnArgs& a, cudaStream_t s, int headsPerBlock = 0, int order = -1);
// The fallback (WMMA 16x16x16, S and P through shared memory).
void launchPrefillAttentionWmma(DType t, const PrefillAttnArgs& a, cudaStream_t s);

// out[r] = the token RowSampling params[r] picks from logits[r, 0..V) (see pds/types.h); params in device memory.
void launchSample(const float* logits, int rows, int V, const RowSampling* params, int32_t* out, cudaStream_t s);

// Grammar masks: for m < M, logits[rows[m], id] = -inf where bit (id & 31) of masks[m * ceil(V / 32) + (id >> 5)]
// is clear (pds/token-mask.h on the host). rows and masks in device memory.
void launchTokenMask(float* logits, int V, const int32_t* rows, int M, const int32_t* masks, cudaStream_t s);

// out[r] = index of the largest of logits[r, 0..V) (lowest index on ties).
void launchArgmax(const float* logits, int rows, int V, int32_t* out, cudaStream_t s);

// Small-batch matrix-vector product for decode: y[t, n] = sum_k x[t, k] * W[n, k], t < T <= kGemvMaxRows.
// W in t; x in xt (t, or f32: then y is f32 too); y in t, or f32 when outF32. K must be a multiple of
// 16 / sizeof(t).
constexpr int kGemvMaxRows = 8;
void launchGemv(DType xt, DType t, const void* x, const void* W, void* y, int T, int N, int K, bool outF32,
                cudaStream_t s);
// The same with the SwiGLU fused into the input: x[t, k] = silu(gu[t, k]) * gu[t, K + k], gu [T, 2K] in xt;
// y in xt.
void launchGemvSilu(DType xt, DType t, const void* gu, const void* W, void* y, int T, int N, int K, cudaStream_t s);

// Fused decode GEMVs (gemv-fused.cu), T <= kGemvMaxRows, x / y / act in xt (the weight dtype t, or f32 over
// bf16/f16 weights), K a multiple of 16 / sizeof(t); normW [K] in xt:
//   launchGemvNorm:       y[T, N] = rmsnorm(x[T, K]; normW, eps) W[N, K]^T
//   launchGemvNormSwiGlu: act[T, I] = silu(g) * u with [g | u] = rmsnorm(x; normW, eps) Wgu[2I, K]^T
//   launchGemvResidual:   x[T, N] += a[T, K] W[N, K]^T
// Each equals the unfused kernels' sequence (rmsnorm, gemv, silu-mul, residual add) up to summation order.
void launchGemvNorm(DType xt, DType t, const void* x, const void* normW, float eps, const void* W, void* y, int T, int N, int K,
                    cudaStream_t s);
void launchGemvNormSwiGlu(DType xt, DType t, const void* x, const void* normW, float eps, const void* Wgu, void* act, int T, int I,
                          int K, cudaStream_t s);
void launchGemvResidual(DType xt, DType t, const void* a, const void* W, void* x, int T, int N, int K, cudaStream_t s);

// launchGemvNorm (qkv rows) + launchQkvPrep in one launch (gemv-qkv-rope.cu; clusters of blocks per head):
// q written into qkv [T, (nH + 2 nKV) * D] (its k / v columns are not written), k / v to the cache at slots.
bool gemvQkvRopeSupported(int D);
void launchGemvQkvRope(DType xt, DType t, const void* x, const void* normW, float eps, const void* W, void* qkv, int T,
                       int nH, int nKV, int D, int H, const void* bias, const void* qNormW, const void* kNormW,
                       const float* invFreq, const int32_t* positions, const int32_t* slots, void* kCache, void* vCache,
                       cudaStream_t s);

// KV transfer between cache planes and a contiguous staging buffer. A plane is one (layer, K|V) slab:
// cache plane p at cache + p * cachePlaneBytes ([blocks*blockSize rows of rowBytes]), staging plane p at
// staging + p * numTokens * rowBytes. Token i lives in block blockIds[i / blockSize], row i % blockSize.
// rowBytes must be a multiple of 16.
void launchKvPack(const void* cache, size_t cachePlaneBytes, void* staging, int planes, const int32_t* blockIds,
                  int numTokens, int blockSize, size_t rowBytes, cudaStream_t s);
void launchKvUnpack(void* cache, size_t cachePlaneBytes, const void* staging, int planes, const int32_t* blockIds,
                    int numTokens, int blockSize, size_t rowBytes, cudaStream_t s);

// f32 x split into two t-typed GEMM operands: hi[i] = (t) x[i], lo[i] = (t) (x[i] - hi[i]) (x ~= hi + lo with
// ~16 mantissa bits for bf16).
void launchSplitHiLo(DType t, const float* x, void* hi, void* lo, size_t n, cudaStream_t s);
// out[i] = (dst) in[i] for i < n, converting between any two dtypes.
void launchConvert(DType dst, void* out, DType src, const void* in, size_t n, cudaStream_t s);
// out[i] = offset + scale * u(seed, i), u uniform in [-1, 1), deterministic per (seed, i).
void launchFillRandom(DType t, void* out, size_t n, uint64_t seed, float scale, float offset, cudaStream_t s);

}  // namespace pds::cuda
