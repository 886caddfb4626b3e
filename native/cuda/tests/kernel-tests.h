// Shared by the kernel-test files (kernel-tests-*.cu): the test functions of each kernel family, the random
// stream and small helpers. Each kernel is checked against a straightforward CPU reference in double on random
// inputs (inputs rounded to the kernel's dtype first). Pass: relative L2 error ||out - ref|| / ||ref|| under
// tolFor(dtype) (f32 1e-5, f16 3e-3, bf16 1e-2) unless a test states otherwise; integer outputs must match
// exactly.
#pragma once
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "../cublas-loader.h"
#include "harness.h"

namespace pds::test::kernels {

inline std::mt19937 rng;  // seeded by runKernelTests: one stream for the whole run, in its order
inline const DType kAll[] = {DType::F32, DType::F16, DType::BF16};
inline std::string tag(DType t) { return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16"; }

inline int32_t* devInts(const std::vector<int32_t>& v) {
  int32_t* d = nullptr;
  TCHECK(cudaMalloc(&d, std::max<size_t>(v.size(), 4) * 4));
  if (!v.empty()) TCHECK(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  return d;
}
inline void sync() { TCHECK(cudaDeviceSynchronize()); }
inline void check(bool ok, const std::string& name, double err, double tol) {
  char b[96]; std::snprintf(b, sizeof b, "(err %.2e, tol %.0e)", err, tol);
  results().record(ok && err <= tol, name, b);
}

// kernel-tests-elementwise.cu: embedding, rmsnorm (+ residual add, + row gather), qkv prep (bias, q/k norm,
// RoPE, KV write), SiLU-mul, dtype conversion and seeded fill.
void testEmbedding(DType t);
void testRmsNorm(DType t, int H, bool withAdd, bool withIdx);
void testQkvPrep(DType t, int D, int nH, int nKV, bool bias, bool norm);
void testSiluMul(DType t, int I);
void testConvertAndFill();

// kernel-tests-attention.cu: paged decode attention (split + combine, fused) and prefill attention.
// fused = launchPagedAttentionFused, launched twice (output reset to NaN in between) to check that it
// leaves its counters at zero for the next launch (CUDA-graph replays).
void testPagedAttention(DType t, int D, int nH, int nKV, int splitSize, bool fused = false,
                        std::vector<int> ctx = {1, 17, 255, 300, 1000}, std::vector<int> nNew = {1, 1, 3, 1, 5});
// Kernel variants: Mma = launchPrefillAttentionMma's choices (2 heads per block when G is even; these small
// grids fit the device, so zigzag order), Mma1 = one head per block, MmaHeavyFirst = most-keys-first order,
// Wmma = the fallback kernel (launchPrefillAttentionWmma, PDSERVE_PREFILL_ATTN=wmma).
enum class PrefillKernel { Mma, Mma1, MmaHeavyFirst, Wmma };
void testPrefillAttention(DType t, int D, int nH, int nKV, PrefillKernel kernel = PrefillKernel::Mma,
                          std::vector<int> ctx = {1, 65, 167, 337, 64}, std::vector<int> nNew = {1, 65, 130, 37, 64},
                          int blockSize = 16);

// kernel-tests-matmul.cu: cuBLAS GEMM and the GEMV kernels, same dtype and f32 x over bf16/f16 weights.
void testMatmul(DType t, int M, int N, int K, bool outF32, bool gemv, cuda::Cublas* blas);
void testMatmulMixed(DType wt, int M, int N, int K, bool gemv, cuda::Cublas* blas);
void testGemvSilu(DType t);
void testGemvSiluMixed(DType wt);

// kernel-tests-fused.cu: the fused decode GEMVs (norm prologue, SwiGLU and residual epilogues) vs the unfused
// kernels; xt = wt, or f32 over bf16/f16 weights. N = outputs (SwiGLU: I, with 2N weight rows), K = hidden.
void testGemvFused(DType xt, DType wt, int M, int N, int K);
void testGemvQkvRope(DType xt, DType wt, int M, int nH, int nKV, int D, int H, bool bias, bool norm);

// kernel-tests-sampling.cu: device token choice against pds::sampleRow, argmax.
void testSample();
void testTokenMask(int V);  // launchTokenMask vs pds::applyTokenMask, then sampling
void testArgmax();

// kernel-tests-kv-copy.cu: paged KV <-> contiguous staging pack / unpack.
void testKvPack();

}  // namespace pds::test::kernels
