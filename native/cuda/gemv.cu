// Small-batch GEMV for decode (memory-bound: each weight row is read once for all R <= 8 input rows).
// One warp per output feature n; 16-byte weight loads, 4 in flight per lane; x rows read through L1.
#include <type_traits>

#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

constexpr int kGemvWarps = 8;

// x row r, elements k..k+V (V = 16 / sizeof(TW): one 16-byte weight load) as floats: plain, or (Silu)
// silu(gu[r, k..]) * gu[r, K + k..] from a [R, 2K] gate/up buffer. TX = TW: rounded to TX as the separate
// SiLU kernel would store it; TX = f32 (f32 compute over bf16/f16 weights): no rounding.
template <int V> __device__ __forceinline__ void load4s(const float* p, float* v) {
#pragma unroll
  for (int j = 0; j < V; j += 4) {
    const float4 f = *reinterpret_cast<const float4*>(p + j);
    v[j] = f.x; v[j + 1] = f.y; v[j + 2] = f.z; v[j + 3] = f.w;
  }
}
template <typename TX, typename TW> __device__ __forceinline__ void loadV(const TX* p, float* v) {
  constexpr int V = Vec<TW>::N;
  if constexpr (std::is_same_v<TX, TW>) {
    Vec<TX> a; a.load(p);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = a.get(i);
  } else {
    static_assert(std::is_same_v<TX, float>, "mixed GEMV reads f32 activations");
    load4s<V>(p, v);
  }
}
template <typename TX, typename TW, bool Silu>
__device__ __forceinline__ void loadX(const TX* x, int r, int K, int k, float* v) {
  constexpr int V = Vec<TW>::N;
  if (!Silu) { loadV<TX, TW>(x + (size_t)r * K + k, v); return; }
  float g[V], u[V];
  loadV<TX, TW>(x + (size_t)r * 2 * K + k, g);
  loadV<TX, TW>(x + (size_t)r * 2 * K + K + k, u);
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const float a = g[i] / (1.f + __expf(-g[i])) * u[i];
    v[i] = std::is_same_v<TX, float> ? a : toF(fromF<TX>(a));
  }
}

// wpr warps share a row (split K) when there are too few rows to fill the GPU; rows per block = 8 / wpr.
template <typename TX, typename T, int R, bool OutF32, bool Silu>
__global__ void __launch_bounds__(kGemvWarps * 32) gemvKernel(const TX* x, const T* W, void* y, int N, int K, int wpr) {
  pdlWait();
  pdlTrigger();
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
        float xv[V];
        loadX<TX, T, Silu>(x, r, K, k + u * step, xv);
#pragma unroll
        for (int i = 0; i < V; ++i) acc[r] += wv[u].get(i) * xv[i];
      }
    }
  }
  }
  for (; active && k < K; k += step) {
    Vec<T> wv; wv.raw = __ldcs(reinterpret_cast<const uint4*>(w + k));
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float xv[V];
      loadX<TX, T, Silu>(x, r, K, k, xv);
#pragma unroll
      for (int i = 0; i < V; ++i) acc[r] += wv.get(i) * xv[i];
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

template <typename TX, typename T, bool OutF32, bool Silu>
static void gemvRows(const void* x, const void* W, void* y, int R, int N, int K, cudaStream_t s) {
  static int sms = 0;
  if (!sms) { int dev = 0; cudaGetDevice(&dev); cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev); if (sms <= 0) sms = 132; }
  int wpr = 1;  // aim for >= 4 blocks of 8 warps per SM
  while (wpr < kGemvWarps && (long)N * wpr < 16L * sms && K / (wpr * 2) >= 32 * (16 / (int)sizeof(T)) * 2) wpr *= 2;
  const int rowsPerBlock = kGemvWarps / wpr;
  const int blocks = (N + rowsPerBlock - 1) / rowsPerBlock;
  const TX* xx = (const TX*)x; const T* ww = (const T*)W;
  switch (R) {
#define PDS_GEMV_CASE(r) case r: launchPdl(gemvKernel<TX, T, r, OutF32, Silu>, blocks, kGemvWarps * 32, 0, s, xx, ww, y, N, K, wpr); break;
    PDS_GEMV_CASE(1) PDS_GEMV_CASE(2) PDS_GEMV_CASE(3) PDS_GEMV_CASE(4)
    PDS_GEMV_CASE(5) PDS_GEMV_CASE(6) PDS_GEMV_CASE(7) PDS_GEMV_CASE(8)
#undef PDS_GEMV_CASE
    default: throw std::runtime_error("CUDA backend: gemv: too many rows");
  }
}

static void checkGemvArgs(DType xt, DType t, int K) {
  if (K % (16 / (int)dtypeSize(t))) throw std::runtime_error("CUDA backend: gemv: K not a multiple of the vector width");
  if (xt != t && xt != DType::F32) throw std::runtime_error("CUDA backend: gemv: x must be in the weight dtype or f32");
}

void launchGemv(DType xt, DType t, const void* x, const void* W, void* y, int T, int N, int K, bool outF32,
                cudaStream_t s) {
  if (T <= 0 || N <= 0) return;
  checkGemvArgs(xt, t, K);
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    if (xt != t) gemvRows<float, E, true, false>(x, W, y, T, N, K, s);
    else if (outF32) gemvRows<E, E, true, false>(x, W, y, T, N, K, s);
    else gemvRows<E, E, false, false>(x, W, y, T, N, K, s);
  });
  checkLaunch("gemv");
}

void launchGemvSilu(DType xt, DType t, const void* gu, const void* W, void* y, int T, int N, int K, cudaStream_t s) {
  if (T <= 0 || N <= 0) return;
  checkGemvArgs(xt, t, K);
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    if (xt != t) gemvRows<float, E, true, true>(gu, W, y, T, N, K, s);
    else gemvRows<E, E, false, true>(gu, W, y, T, N, K, s);
  });
  checkLaunch("gemv_silu");
}

}  // namespace pds::cuda
