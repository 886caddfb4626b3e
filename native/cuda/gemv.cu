// Small-batch GEMV for decode (memory-bound: each weight row is read once for all R <= 8 input rows).
// One warp per output feature n; 16-byte weight loads, 4 in flight per lane; x rows read through L1.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

constexpr int kGemvWarps = 8;

// x row r, elements k..k+V: plain, or (Silu) silu(gu[r, k..]) * gu[r, K + k..] from a [R, 2K] gate/up
// buffer, rounded to T as the separate SiLU kernel would store it.
template <typename T, bool Silu>
__device__ __forceinline__ Vec<T> loadX(const T* x, int r, int K, int k) {
  Vec<T> v;
  if (!Silu) { v.load(x + (size_t)r * K + k); return v; }
  Vec<T> g, u;
  g.load(x + (size_t)r * 2 * K + k);
  u.load(x + (size_t)r * 2 * K + K + k);
#pragma unroll
  for (int i = 0; i < Vec<T>::N; ++i) { const float a = g.get(i); v.set(i, a / (1.f + __expf(-a)) * u.get(i)); }
  return v;
}

// wpr warps share a row (split K) when there are too few rows to fill the GPU; rows per block = 8 / wpr.
template <typename T, int R, bool OutF32, bool Silu>
__global__ void __launch_bounds__(kGemvWarps * 32) gemvKernel(const T* x, const T* W, void* y, int N, int K, int wpr) {
  constexpr int V = Vec<T>::N;
  __shared__ float part[kGemvWarps][R];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int sub = warp % wpr;
  const int n = blockIdx.x * (kGemvWarps / wpr) + warp / wpr;
  const bool active = n < N;
  const T* w = W + (size_t)min(n, N - 1) * K;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.f;
  constexpr int U = 4;
  const int step = wpr * 32 * V;
  int k = (sub * 32 + lane) * V;
  if (active) {
  for (; k + (U - 1) * step < K; k += U * step) {
    Vec<T> wv[U];
#pragma unroll
    for (int u = 0; u < U; ++u) wv[u].raw = __ldcs(reinterpret_cast<const uint4*>(w + k + u * step));
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const Vec<T> xv = loadX<T, Silu>(x, r, K, k + u * step);
#pragma unroll
        for (int i = 0; i < V; ++i) acc[r] += wv[u].get(i) * xv.get(i);
      }
    }
  }
  }
  for (; active && k < K; k += step) {
    Vec<T> wv; wv.raw = __ldcs(reinterpret_cast<const uint4*>(w + k));
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const Vec<T> xv = loadX<T, Silu>(x, r, K, k);
#pragma unroll
      for (int i = 0; i < V; ++i) acc[r] += wv.get(i) * xv.get(i);
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float s = warpSum(acc[r]);
    if (lane == 0) part[warp][r] = s;
  }
  __syncthreads();
  if (active && sub == 0 && lane < R) {
    float s = 0.f;
    for (int i = 0; i < wpr; ++i) s += part[warp + i][lane];
    if (OutF32) ((float*)y)[(size_t)lane * N + n] = s;
    else ((T*)y)[(size_t)lane * N + n] = fromF<T>(s);
  }
}

template <typename T, bool OutF32, bool Silu>
static void gemvRows(const void* x, const void* W, void* y, int R, int N, int K, cudaStream_t s) {
  static int sms = 0;
  if (!sms) { int dev = 0; cudaGetDevice(&dev); cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev); if (sms <= 0) sms = 132; }
  int wpr = 1;  // aim for >= 4 blocks of 8 warps per SM
  while (wpr < kGemvWarps && (long)N * wpr < 16L * sms && K / (wpr * 2) >= 32 * (16 / (int)sizeof(T)) * 2) wpr *= 2;
  const int rowsPerBlock = kGemvWarps / wpr;
  const int blocks = (N + rowsPerBlock - 1) / rowsPerBlock;
  const T* xx = (const T*)x; const T* ww = (const T*)W;
  switch (R) {
#define PDS_GEMV_CASE(r) case r: gemvKernel<T, r, OutF32, Silu><<<blocks, kGemvWarps * 32, 0, s>>>(xx, ww, y, N, K, wpr); break;
    PDS_GEMV_CASE(1) PDS_GEMV_CASE(2) PDS_GEMV_CASE(3) PDS_GEMV_CASE(4)
    PDS_GEMV_CASE(5) PDS_GEMV_CASE(6) PDS_GEMV_CASE(7) PDS_GEMV_CASE(8)
#undef PDS_GEMV_CASE
    default: throw std::runtime_error("CUDA backend: gemv: too many rows");
  }
}

void launchGemv(DType t, const void* x, const void* W, void* y, int T, int N, int K, bool outF32, cudaStream_t s) {
  if (T <= 0 || N <= 0) return;
  if (K % (16 / (int)dtypeSize(t))) throw std::runtime_error("CUDA backend: gemv: K not a multiple of the vector width");
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    if (outF32) gemvRows<E, true, false>(x, W, y, T, N, K, s);
    else gemvRows<E, false, false>(x, W, y, T, N, K, s);
  });
  checkLaunch("gemv");
}

void launchGemvSilu(DType t, const void* gu, const void* W, void* y, int T, int N, int K, cudaStream_t s) {
  if (T <= 0 || N <= 0) return;
  if (K % (16 / (int)dtypeSize(t))) throw std::runtime_error("CUDA backend: gemv: K not a multiple of the vector width");
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    gemvRows<E, false, true>(gu, W, y, T, N, K, s);
  });
  checkLaunch("gemv_silu");
}

}  // namespace pds::cuda
