// Matmul y[M,N] (+)= x[M,K] · W[N,K]^T, width-generic (see simd.h). Included once per ISA by matmul.cc
// (AVX2) and matmul.avx512.cc, which each export one entry point (matmul-isa.h).
//
// One register-tiled dot-product kernel serves decode and prefill: a tile is RB rows of x times NO rows
// of W, vectorized along K with RB*NO accumulators (W converted to f32 in registers, never packed).
//  - M <= RBMAX (decode): every W row is streamed from memory exactly once per call for the whole batch.
//  - larger M: blocked so an RB-row group of x (KC columns) stays in L1 while a panel of NP W rows
//    (KC columns) stays in L2; K is split into KC chunks that accumulate into y.
// Threads take contiguous chunks of N (W rows), so each streams its own part of W.
#pragma once
#include <vector>

#include "host-buffer.h"
#include "simd.h"
#include "thread-pool.h"

namespace {

using pds::DType;

#if defined(__AVX512F__)
constexpr int RBMAX = 8;
template <int RB>
constexpr int noFor() { return RB == 1 ? 8 : RB == 2 ? 6 : RB <= 4 ? 4 : 3; }
#else
constexpr int RBMAX = 4;
template <int RB>
constexpr int noFor() { return RB <= 2 ? 4 : RB == 3 ? 3 : 2; }
#endif
constexpr int KC = 1024;  // K chunk
constexpr int NP = 96;    // W rows per L2 panel

// y[r*ldy + o] (+)= sum_{k < kLen} x[r*ldx + k] * w[o*ldw + k]   for r < RB, o < NO
template <DType WT, int NO, int RB>
static inline void dotTile(const float* x, int ldx, const typename Ld<WT>::E* w, int ldw, int kLen, float* y, int ldy,
                           bool accum) {
  vf a[NO][RB];
  for (int o = 0; o < NO; o++)
    for (int r = 0; r < RB; r++) a[o][r] = vf{};
  int k = 0;
  for (; k + VW <= kLen; k += VW) {
    vf wv[NO];
    if ((k & 31) == 0)  // W streams from memory: prefetch the next tile's rows, one per 64-byte line
      for (int o = 0; o < NO; o++) __builtin_prefetch(w + static_cast<size_t>(o + NO) * ldw + k);
    for (int o = 0; o < NO; o++) wv[o] = Ld<WT>::load(w + static_cast<size_t>(o) * ldw + k);
    for (int r = 0; r < RB; r++) {
      vf xv = loadu(x + static_cast<size_t>(r) * ldx + k);
      asm("" : "+v"(xv));  // keep x in a register: one load per row, not one per FMA
      for (int o = 0; o < NO; o++) a[o][r] += wv[o] * xv;
    }
  }
  for (int o = 0; o < NO; o++)
    for (int r = 0; r < RB; r++) {
      float s = hsum(a[o][r]);
      for (int kk = k; kk < kLen; kk++)
        s += Ld<WT>::one(w + static_cast<size_t>(o) * ldw + kk) * x[static_cast<size_t>(r) * ldx + kk];
      float* d = y + static_cast<size_t>(r) * ldy + o;
      *d = accum ? *d + s : s;
    }
}

// `rows` W rows (row stride ldw, already offset to the K chunk) against RB rows of x (row stride ldx):
// y[r, 0:rows] (+)= x[r, 0:kLen] · W[0:rows, 0:kLen]^T.
template <DType WT, int RB>
static void rowRange(const float* x, int ldx, const typename Ld<WT>::E* W, int ldw, float* y, int ldy, int64_t rows,
                     int kLen, bool accum) {
  constexpr int NO = noFor<RB>();
  int64_t o = 0;
  for (; o + NO <= rows; o += NO) dotTile<WT, NO, RB>(x, ldx, W + o * ldw, ldw, kLen, y + o, ldy, accum);
  for (; o < rows; o++) dotTile<WT, 1, RB>(x, ldx, W + o * ldw, ldw, kLen, y + o, ldy, accum);
}

template <DType WT>
static void rowRangeAny(int rb, const float* x, int ldx, const typename Ld<WT>::E* W, int ldw, float* y, int ldy,
                        int64_t rows, int kLen, bool accum) {
  switch (rb) {
    case 1: return rowRange<WT, 1>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
    case 2: return rowRange<WT, 2>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
    case 3: return rowRange<WT, 3>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
    case 4: return rowRange<WT, 4>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
#if defined(__AVX512F__)
    case 5: return rowRange<WT, 5>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
    case 6: return rowRange<WT, 6>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
    case 7: return rowRange<WT, 7>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
    case 8: return rowRange<WT, 8>(x, ldx, W, ldw, y, ldy, rows, kLen, accum);
#endif
    default: return;
  }
}

// Converts W[0:rows, 0:kLen] (row stride ldw) to f32 rows of stride ldf.
template <DType WT>
static void panelToF32(const typename Ld<WT>::E* W, int ldw, int64_t rows, int kLen, float* dst, int ldf) {
  for (int64_t o = 0; o < rows; o++) {
    const typename Ld<WT>::E* src = W + o * ldw;
    float* d = dst + o * ldf;
    int k = 0;
    for (; k + VW <= kLen; k += VW) storeu(d + k, Ld<WT>::load(src + k));
    for (; k < kLen; k++) d[k] = Ld<WT>::one(src + k);
  }
}

template <DType WT>
static void matmulT(pds::cpu::ThreadPool& pool, const float* x, int M, int K, const void* Wv, int N, float* y, int ldy,
                    bool accum) {
  auto W = static_cast<const typename Ld<WT>::E*>(Wv);
  pool.parallelChunks(N, 16, [&](int64_t b, int64_t e) {
    if (M <= RBMAX) {  // decode: stream W once, whole K per tile
      rowRangeAny<WT>(M, x, K, W + b * K, K, y + b, ldy, e - b, K, accum);
      return;
    }
    // Many row groups reuse each panel: convert a 16/8-bit panel to f32 once, not once per group.
    const bool convert = WT != DType::F32 && M > 4 * RBMAX;
    thread_local pds::cpu::AlignedVec<float> panel;
    if (convert && panel.size() < static_cast<size_t>(NP) * KC) panel.resize(static_cast<size_t>(NP) * KC);
    for (int kb = 0; kb < K; kb += KC) {
      const int kLen = K - kb < KC ? K - kb : KC;
      const bool acc = accum || kb > 0;
      for (int64_t p = b; p < e; p += NP) {
        const int64_t rows = (p + NP < e ? p + NP : e) - p;
        const typename Ld<WT>::E* wp = W + p * K + kb;
        if (convert) panelToF32<WT>(wp, K, rows, kLen, panel.data(), KC);
        for (int m = 0; m < M; m += RBMAX) {
          const int rb = M - m < RBMAX ? M - m : RBMAX;
          const float* xm = x + static_cast<size_t>(m) * K + kb;
          float* ym = y + static_cast<size_t>(m) * ldy + p;
          if (convert)
            rowRangeAny<DType::F32>(rb, xm, K, panel.data(), KC, ym, ldy, rows, kLen, acc);
          else
            rowRangeAny<WT>(rb, xm, K, wp, K, ym, ldy, rows, kLen, acc);
        }
      }
    }
  });
}

static void matmulDispatch(pds::cpu::ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N,
                           float* y, int ldy, bool accum) {
  switch (wdt) {
    case DType::F32: return matmulT<DType::F32>(pool, x, M, K, W, N, y, ldy, accum);
    case DType::BF16: return matmulT<DType::BF16>(pool, x, M, K, W, N, y, ldy, accum);
    case DType::F16: return matmulT<DType::F16>(pool, x, M, K, W, N, y, ldy, accum);
  }
}

// GFLOP/s of the full-size tile (RBMAX x noFor<RBMAX>, f32 weights) on L1-resident operands, all pool threads.
static double microKernelPeak(pds::cpu::ThreadPool& pool) {
  constexpr int K = 512, NO = noFor<RBMAX>();
  std::vector<double> gflops(pool.size(), 0.0);
  pool.run([&](int tid, int) {
    pds::cpu::AlignedVec<float> w(NO * K), x(RBMAX * K), y(RBMAX * NO);
    for (int i = 0; i < NO * K; i++) w[i] = 0.001f * (i % 97);
    for (int i = 0; i < RBMAX * K; i++) x[i] = 0.001f * (i % 89);
    for (int i = 0; i < 200; i++) dotTile<DType::F32, NO, RBMAX>(x.data(), K, w.data(), K, K, y.data(), NO, false);
    const int iters = 20000;
    // Thread CPU time: the kernel's own throughput, not the share of a busy machine it got.
    struct timespec s, e;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &s);
    for (int i = 0; i < iters; i++) dotTile<DType::F32, NO, RBMAX>(x.data(), K, w.data(), K, K, y.data(), NO, i > 0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &e);
    double sec = (e.tv_sec - s.tv_sec) + (e.tv_nsec - s.tv_nsec) * 1e-9;
    gflops[tid] = 2.0 * RBMAX * NO * K * iters / sec / 1e9;
  });
  double total = 0;
  for (double g : gflops) total += g;
  return total;
}

}  // namespace
