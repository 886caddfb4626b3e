// The CPU kernel layer: plain functions over float32 activations (weights/KV in their stored dtype).
// Shapes in comments are row-major. Kernels that take a ThreadPool split their work over it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "pds/types.h"
#include "thread-pool.h"

namespace pds::cpu {

// y[M, N] (+)= x[M, K] · W[N, K]^T   (W is a Hugging Face Linear weight, out x in, dtype wdt).
// ldy: row stride of y (>= N). accumulate: y += ... instead of y = ...
// Register-tiled dot products along K (see matmul-impl.h); small M streams W once for all rows.
// bf16 W on a CPU with AVX512-BF16 (hasAvx512Bf16()): vdpbf16ps on x split into hi + lo bf16 parts (f32-level
// results; PDSERVE_CPU_BF16_DOT=round: x rounded to bf16, faster, less exact), see matmul.avx512bf16.cc.
void matmul(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
            bool accumulate);

// y[rows, dim] = x * rsqrt(mean(x^2) + eps) * w     (x and y may alias). Row strides ldx/ldy.
void rmsnorm(const float* x, int ldx, const float* w, float* y, int ldy, int rows, int dim, float eps);

// inv_freq[headDim/2] for the spec's RoPE (default or llama3-scaled), as HF computes it.
void ropeInvFreq(const ModelSpec& spec, float* invFreq);
// In place on x[rows, heads, headDim] (row stride ldx): NeoX rotate_half pairs (i, i + headDim/2),
// angle = positions[row] * invFreq[i].
void rope(float* x, int ldx, int rows, int heads, int headDim, const int32_t* positions, const float* invFreq);
// The same in two steps: cs[rows, 2*half] = [cos | sin] of the angles, then the rotation of x by cs.
void ropeTable(const int32_t* positions, int rows, const float* invFreq, int half, float* cs);
void ropeApply(float* x, int ldx, int rows, int heads, int headDim, const float* cs);

// out[rows, I] = silu(gu[r, 0:I]) * gu[r, I:2I]    (gu rows are [gate | up], row stride 2I).
void siluMul(const float* gu, int rows, int I, float* out);

// out[T, H] = table[ids[t]] (table [vocab, H] in dtype t). Throws std::out_of_range on a bad id.
void embedding(const int32_t* ids, int T, const void* table, DType t, int vocab, int H, float* out);

// Paged KV cache of one layer: K and V each [numBlocks, blockSize, kvHeads, headDim] in kvDtype.
struct KvLayer {
  void* k = nullptr;
  void* v = nullptr;
  DType dtype = DType::F32;
  int numBlocks = 0, blockSize = 0, kvHeads = 0, headDim = 0;
};

// Writes k[T, kvHeads*headDim] and v (row strides ldk/ldv) into the cache slots slotMapping[t]
// (negative slot = skip). Throws std::out_of_range on a slot past the cache.
void kvWrite(const KvLayer& kv, const float* k, int ldk, const float* v, int ldv, const int32_t* slotMapping, int T);

// Causal paged attention for a batch (see pds::BatchDesc). q/out: [T, numHeads*headDim] (row strides ldq/ldo).
// Query row i of sequence s (n rows) sits at position contextLens[s]-n+i and attends cached keys 0..position.
// GQA: query head h reads kv head h / (numHeads / kvHeads). Softmax in f32, scale = 1/sqrt(headDim).
struct AttnBatch {
  int numSeqs = 0;
  const int32_t* queryStartLoc = nullptr;  // [S+1]
  const int32_t* contextLens = nullptr;    // [S]
  const int32_t* blockTables = nullptr;    // [S, maxBlocksPerSeq]
  int maxBlocksPerSeq = 0;
};
void pagedAttention(ThreadPool& pool, const float* q, int ldq, int numHeads, const KvLayer& kv, const AttnBatch& b,
                    float* out, int ldo);

// KV transfer between the cache of all layers ([layers][2] KvLayer views) and a host buffer
// [layers, 2, numTokens, kvHeads, headDim]: one memcpy per (layer, K/V, block). Validates block ids.
void kvGatherAll(ThreadPool& pool, const KvLayer* layers, int numLayers, const int32_t* blockIds, int numBlocks,
                 int numTokens, void* dst);
void kvScatterAll(ThreadPool& pool, const KvLayer* layers, int numLayers, const int32_t* blockIds, int numBlocks,
                  int numTokens, const void* src);

// Deterministic pseudo-random fill: uniform in [-scale, scale] (as dtype), seeded per (seed, stream).
void fillRandom(ThreadPool& pool, void* dst, DType t, size_t n, float scale, uint64_t seed, uint64_t stream);

// Measurement probes (for benchmark ratios).
double measureMemcpyGBs(size_t bytes, int iters);
double measureReadGBs(ThreadPool& pool, size_t bytes, int iters);
double measureMatmulPeakGflops(ThreadPool& pool);

bool hasAvx512();
// AVX512-BF16 (vdpbf16ps) usable: the CPU has it and PDSERVE_NO_AVX512BF16 is not 1.
bool hasAvx512Bf16();

}  // namespace pds::cpu
