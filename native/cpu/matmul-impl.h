// Matmul kernels y[M,N] (+)= x[M,K] · W[N,K]^T, width-generic (see simd.h). Included once per ISA by
// matmul.cc (AVX2) and matmul.avx512.cc, which each export one entry point (matmul-isa.h).
//  - M <= 8 (decode): GEMV tiles of NO output rows x M input rows; each W row is streamed once per call
//    for the whole batch, with NO*M independent accumulators.
//  - M > 8 (prefill): W is packed per panel of NR = 2*VW output columns into f32 [K][NR] (converted once),
//    then an MR x NR register-tiled outer-product micro-kernel sweeps all M rows over it.
#pragma once
#include <vector>

#include "simd.h"
#include "thread-pool.h"

namespace {

using pds::DType;

// --- GEMV (M <= 8) ---
template <DType WT, int NO, int RB>
static inline void gemvTile(const float* x, int K, const typename Ld<WT>::E* w, float* y, int ldy, bool accum) {
  vf a[NO][RB];
  for (int o = 0; o < NO; o++)
    for (int r = 0; r < RB; r++) a[o][r] = vf{};
  int k = 0;
  for (; k + VW <= K; k += VW) {
    vf wv[NO];
    for (int o = 0; o < NO; o++) wv[o] = Ld<WT>::load(w + static_cast<size_t>(o) * K + k);
    for (int r = 0; r < RB; r++) {
      vf xv = loadu(x + static_cast<size_t>(r) * K + k);
      for (int o = 0; o < NO; o++) a[o][r] += wv[o] * xv;
    }
  }
  for (int o = 0; o < NO; o++)
    for (int r = 0; r < RB; r++) {
      float s = hsum(a[o][r]);
      for (int kk = k; kk < K; kk++) s += Ld<WT>::one(w + static_cast<size_t>(o) * K + kk) * x[static_cast<size_t>(r) * K + kk];
      float* d = y + static_cast<size_t>(r) * ldy + o;
      *d = accum ? *d + s : s;
    }
}

template <DType WT, int RB>
static void gemvRange(const float* x, int K, const typename Ld<WT>::E* W, float* y, int ldy, bool accum, int64_t b,
                      int64_t e) {
#if defined(__AVX512F__)
  constexpr int NO = RB == 1 ? 8 : RB == 2 ? 6 : RB <= 4 ? 4 : RB == 5 ? 3 : 2;
#else
  constexpr int NO = RB == 1 ? 4 : RB == 2 ? 3 : RB <= 4 ? 2 : 1;
#endif
  int64_t o = b;
  for (; o + NO <= e; o += NO) gemvTile<WT, NO, RB>(x, K, W + o * K, y + o, ldy, accum);
  for (; o < e; o++) gemvTile<WT, 1, RB>(x, K, W + o * K, y + o, ldy, accum);
}

template <DType WT>
static void gemv(pds::cpu::ThreadPool& pool, const float* x, int M, int K, const void* Wv, int N, float* y, int ldy,
                 bool accum) {
  auto W = static_cast<const typename Ld<WT>::E*>(Wv);
  pool.parallelRange(N, 16, [&](int64_t b, int64_t e) {
    switch (M) {
      case 1: return gemvRange<WT, 1>(x, K, W, y, ldy, accum, b, e);
      case 2: return gemvRange<WT, 2>(x, K, W, y, ldy, accum, b, e);
      case 3: return gemvRange<WT, 3>(x, K, W, y, ldy, accum, b, e);
      case 4: return gemvRange<WT, 4>(x, K, W, y, ldy, accum, b, e);
      case 5: return gemvRange<WT, 5>(x, K, W, y, ldy, accum, b, e);
      case 6: return gemvRange<WT, 6>(x, K, W, y, ldy, accum, b, e);
      case 7: return gemvRange<WT, 7>(x, K, W, y, ldy, accum, b, e);
      default: return gemvRange<WT, 8>(x, K, W, y, ldy, accum, b, e);
    }
  });
}

// --- packed GEMM (M > 8) ---
constexpr int NR = 2 * VW;
#if defined(__AVX512F__)
constexpr int MR = 8;
#else
constexpr int MR = 6;
#endif

// c[MR_, NR] (+)= a[MR_, K] · pack[K, NR]; only the first nValid columns are written.
template <int MR_>
static inline void microKernel(const float* a, int lda, const float* pack, int K, float* c, int ldc, int nValid,
                               bool accum) {
  vf acc[MR_][2];
  for (int r = 0; r < MR_; r++) acc[r][0] = acc[r][1] = vf{};
  for (int k = 0; k < K; k++) {
    vf b0 = *reinterpret_cast<const vf*>(pack + static_cast<size_t>(k) * NR);
    vf b1 = *reinterpret_cast<const vf*>(pack + static_cast<size_t>(k) * NR + VW);
    for (int r = 0; r < MR_; r++) {
      float av = a[static_cast<size_t>(r) * lda + k];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
  }
  for (int r = 0; r < MR_; r++) {
    float* cr = c + static_cast<size_t>(r) * ldc;
    if (nValid == NR) {
      if (accum) {
        storeu(cr, loadu(cr) + acc[r][0]);
        storeu(cr + VW, loadu(cr + VW) + acc[r][1]);
      } else {
        storeu(cr, acc[r][0]);
        storeu(cr + VW, acc[r][1]);
      }
    } else {
      float tmp[NR];
      storeu(tmp, acc[r][0]);
      storeu(tmp + VW, acc[r][1]);
      for (int n = 0; n < nValid; n++) cr[n] = accum ? cr[n] + tmp[n] : tmp[n];
    }
  }
}

static inline void microKernelTail(int m, const float* a, int lda, const float* pack, int K, float* c, int ldc,
                                   int nValid, bool accum) {
  switch (m) {
    case 1: return microKernel<1>(a, lda, pack, K, c, ldc, nValid, accum);
    case 2: return microKernel<2>(a, lda, pack, K, c, ldc, nValid, accum);
    case 3: return microKernel<3>(a, lda, pack, K, c, ldc, nValid, accum);
    case 4: return microKernel<4>(a, lda, pack, K, c, ldc, nValid, accum);
    case 5: return microKernel<5>(a, lda, pack, K, c, ldc, nValid, accum);
#if defined(__AVX512F__)
    case 6: return microKernel<6>(a, lda, pack, K, c, ldc, nValid, accum);
    case 7: return microKernel<7>(a, lda, pack, K, c, ldc, nValid, accum);
#endif
    default: return;
  }
}

// pack[k*NR + j] = W[n0 + j, k] as f32 (zero for j >= nValid).
template <DType WT>
static void packPanel(const typename Ld<WT>::E* W, int K, int n0, int nValid, float* pack) {
  for (int j = 0; j < NR; j++) {
    if (j >= nValid) {
      for (int k = 0; k < K; k++) pack[static_cast<size_t>(k) * NR + j] = 0.f;
      continue;
    }
    const typename Ld<WT>::E* wr = W + static_cast<size_t>(n0 + j) * K;
    int k = 0;
    for (; k + VW <= K; k += VW) {
      vf v = Ld<WT>::load(wr + k);
      for (int i = 0; i < VW; i++) pack[static_cast<size_t>(k + i) * NR + j] = v[i];
    }
    for (; k < K; k++) pack[static_cast<size_t>(k) * NR + j] = Ld<WT>::one(wr + k);
  }
}

template <DType WT>
static void gemm(pds::cpu::ThreadPool& pool, const float* x, int M, int K, const void* Wv, int N, float* y, int ldy,
                 bool accum) {
  auto W = static_cast<const typename Ld<WT>::E*>(Wv);
  const int64_t panels = (N + NR - 1) / NR;
  pool.parallelRange(panels, 1, [&](int64_t pb, int64_t pe) {
    thread_local std::vector<float, std::allocator<float>> packBuf;
    size_t need = static_cast<size_t>(K) * NR + 16;
    if (packBuf.size() < need) packBuf.resize(need);
    // 64-byte aligned start inside the buffer.
    float* pack = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(packBuf.data()) + 63) & ~uintptr_t(63));
    for (int64_t p = pb; p < pe; p++) {
      int n0 = static_cast<int>(p * NR);
      int nValid = N - n0 < NR ? N - n0 : NR;
      packPanel<WT>(W, K, n0, nValid, pack);
      int m = 0;
      for (; m + MR <= M; m += MR)
        microKernel<MR>(x + static_cast<size_t>(m) * K, K, pack, K, y + static_cast<size_t>(m) * ldy + n0, ldy, nValid,
                        accum);
      if (m < M)
        microKernelTail(M - m, x + static_cast<size_t>(m) * K, K, pack, K, y + static_cast<size_t>(m) * ldy + n0, ldy,
                        nValid, accum);
    }
  });
}

template <DType WT>
static void matmulT(pds::cpu::ThreadPool& pool, const float* x, int M, int K, const void* W, int N, float* y, int ldy,
                    bool accum) {
  if (M <= 8)
    gemv<WT>(pool, x, M, K, W, N, y, ldy, accum);
  else
    gemm<WT>(pool, x, M, K, W, N, y, ldy, accum);
}

static void matmulDispatch(pds::cpu::ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N,
                           float* y, int ldy, bool accum) {
  switch (wdt) {
    case DType::F32: return matmulT<DType::F32>(pool, x, M, K, W, N, y, ldy, accum);
    case DType::BF16: return matmulT<DType::BF16>(pool, x, M, K, W, N, y, ldy, accum);
    case DType::F16: return matmulT<DType::F16>(pool, x, M, K, W, N, y, ldy, accum);
  }
}

// GFLOP/s of microKernel<MR> over cache-resident operands on every pool thread.
static double microKernelPeak(pds::cpu::ThreadPool& pool) {
  constexpr int K = 256;
  std::vector<double> gflops(pool.size(), 0.0);
  pool.run([&](int tid, int) {
    alignas(64) static thread_local float pack[K * NR];
    alignas(64) static thread_local float a[MR * K];
    alignas(64) static thread_local float c[MR * NR];
    for (int i = 0; i < K * NR; i++) pack[i] = 0.001f * (i % 97);
    for (int i = 0; i < MR * K; i++) a[i] = 0.001f * (i % 89);
    for (int i = 0; i < 200; i++) microKernel<MR>(a, K, pack, K, c, NR, NR, false);  // warm
    const int iters = 20000;
    struct timespec s, e;
    clock_gettime(CLOCK_MONOTONIC, &s);
    for (int i = 0; i < iters; i++) microKernel<MR>(a, K, pack, K, c, NR, NR, i > 0);
    clock_gettime(CLOCK_MONOTONIC, &e);
    double sec = (e.tv_sec - s.tv_sec) + (e.tv_nsec - s.tv_nsec) * 1e-9;
    gflops[tid] = 2.0 * MR * NR * K * iters / sec / 1e9;
  });
  double total = 0;
  for (double g : gflops) total += g;
  return total;
}

}  // namespace
