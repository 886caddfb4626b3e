// Fused decode GEMVs (T <= 8 rows), one launch where the unfused decode path takes two:
//   launchGemvNorm:      y = rmsnorm(x) W^T          (the RMSNorm as a prologue: each block reduces the rows'
//                                                     sums of squares, the dot loop normalizes x as it reads it)
//   launchGemvNormSwiGlu: act = silu(g) * u, [g | u] = rmsnorm(x) Wgu^T  (each warp: gate row n and up row I + n)
//   launchGemvResidual:  x += a W^T                   (the residual add as the epilogue: the owner lane adds)
// With the residual add in the producing GEMV (o_proj, down), the next RMSNorm has no addend left, so it can
// be a prologue. Rounding as the unfused kernels: the normalized x, the GEMV outputs and the residual sums are
// rounded to the activation type where those kernels store them (bit-equal up to the order of the sums).
// Same loop shape as gemv.cu (one warp per output, 16-byte streaming weight loads, split K over warps).
#include <type_traits>

#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

namespace {

constexpr int kWarps = 8;

enum class Epi { Store, Residual, SwiGlu };

template <typename TX> __device__ __forceinline__ float roundTo(float v) { return toF(fromF<TX>(v)); }

// x elements k..k+V of row r as floats (V = one 16-byte weight load of TW). Norm: x * inv[r] * g, rounded to
// TX as rmsnorm.cu stores its output.
template <typename TX, typename TW, bool Norm>
__device__ __forceinline__ void loadXs(const TX* x, const TX* g, const float* inv, int r, int K, int k, float* v) {
  constexpr int V = Vec<TW>::N;
  const TX* p = x + (size_t)r * K + k;
  if constexpr (std::is_same_v<TX, TW>) {
    Vec<TX> a; a.load(p);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = a.get(i);
  } else {
    static_assert(std::is_same_v<TX, float>, "mixed GEMV reads f32 activations");
#pragma unroll
    for (int j = 0; j < V; j += 4) {
      const float4 f = *reinterpret_cast<const float4*>(p + j);
      v[j] = f.x; v[j + 1] = f.y; v[j + 2] = f.z; v[j + 3] = f.w;
    }
  }
  if constexpr (Norm) {
    float gv[V];
    if constexpr (std::is_same_v<TX, TW>) {
      Vec<TX> a; a.load(g + k);
#pragma unroll
      for (int i = 0; i < V; ++i) gv[i] = a.get(i);
    } else {
#pragma unroll
      for (int j = 0; j < V; j += 4) {
        const float4 f = *reinterpret_cast<const float4*>(g + k + j);
        gv[j] = f.x; gv[j + 1] = f.y; gv[j + 2] = f.z; gv[j + 3] = f.w;
      }
    }
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = roundTo<TX>(v[i] * inv[r] * gv[i]);
  }
}

// N outputs per row (SwiGlu: N = I, weight rows n and N + n). y in TX ([R, N]; Residual: read and written).
template <typename TX, typename T, int R, bool Norm, Epi E>
__global__ void __launch_bounds__(kWarps * 32)
    gemvFusedKernel(const TX* x, const TX* normW, float eps, const T* W, TX* y, int N, int K, int wpr) {
  pdlWait();
  pdlTrigger();
  constexpr int V = Vec<T>::N;
  constexpr int NW = E == Epi::SwiGlu ? 2 : 1;  // weight rows per warp
  __shared__ float part[kWarps][NW][R];
  __shared__ float inv[R];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if constexpr (Norm) {
    // rows' sums of squares over K (= hidden), the whole block; rmsnorm.cu's inv = rsqrt(mean + eps)
    constexpr int XV = Vec<TX>::N;
    float ss[R];
#pragma unroll
    for (int r = 0; r < R; ++r) ss[r] = 0.f;
    for (int k = threadIdx.x * XV; k < K; k += blockDim.x * XV) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        Vec<TX> a; a.load(x + (size_t)r * K + k);
#pragma unroll
        for (int i = 0; i < XV; ++i) { const float f = a.get(i); ss[r] += f * f; }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float s = warpSum(ss[r]);
      if (lane == 0) part[warp][0][r] = s;
    }
    __syncthreads();
    if (threadIdx.x < R) {
      float s = 0.f;
      for (int w = 0; w < kWarps; ++w) s += part[w][0][threadIdx.x];
      inv[threadIdx.x] = rsqrtf(s / K + eps);
    }
    __syncthreads();
  }
  float invr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) invr[r] = Norm ? inv[r] : 1.f;
  const int sub = warp % wpr;
  const int n = blockIdx.x * (kWarps / wpr) + warp / wpr;
  const bool active = n < N;
  const T* w0 = W + (size_t)min(n, N - 1) * K;
  const T* w1 = W + (size_t)(min(n, N - 1) + (NW == 2 ? N : 0)) * K;
  float acc[NW][R];
#pragma unroll
  for (int j = 0; j < NW; ++j)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[j][r] = 0.f;
  constexpr int U = NW == 2 ? 2 : 4;  // 16-byte weight loads in flight per lane: 4 either way
  const int step = wpr * 32 * V;
  int k = (sub * 32 + lane) * V;
  if (active) {
    for (; k + (U - 1) * step < K; k += U * step) {
      Vec<T> wv[NW][U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        wv[0][u].raw = __ldcs(reinterpret_cast<const uint4*>(w0 + k + u * step));
        if constexpr (NW == 2) wv[NW - 1][u].raw = __ldcs(reinterpret_cast<const uint4*>(w1 + k + u * step));
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float xv[V];
          loadXs<TX, T, Norm>(x, normW, invr, r, K, k + u * step, xv);
#pragma unroll
          for (int j = 0; j < NW; ++j)
#pragma unroll
            for (int i = 0; i < V; ++i) acc[j][r] += wv[j][u].get(i) * xv[i];
        }
      }
    }
    for (; k < K; k += step) {
      Vec<T> wv[NW];
      wv[0].raw = __ldcs(reinterpret_cast<const uint4*>(w0 + k));
      if constexpr (NW == 2) wv[NW - 1].raw = __ldcs(reinterpret_cast<const uint4*>(w1 + k));
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float xv[V];
        loadXs<TX, T, Norm>(x, normW, invr, r, K, k, xv);
#pragma unroll
        for (int j = 0; j < NW; ++j)
#pragma unroll
          for (int i = 0; i < V; ++i) acc[j][r] += wv[j].get(i) * xv[i];
      }
    }
  }
  if constexpr (Norm) __syncthreads();  // part[] held the prologue's sums
#pragma unroll
  for (int j = 0; j < NW; ++j)
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float s = warpSum(acc[j][r]);
      if (lane == 0) part[warp][j][r] = s;
    }
  __syncthreads();
  if (active && sub == 0 && lane < R) {
    float s[NW];
#pragma unroll
    for (int j = 0; j < NW; ++j) {
      s[j] = 0.f;
      for (int i = 0; i < wpr; ++i) s[j] += part[warp + i][j][lane];
    }
    TX* out = y + (size_t)lane * N + n;
    if constexpr (E == Epi::Store) {
      *out = fromF<TX>(s[0]);
    } else if constexpr (E == Epi::Residual) {
      *out = fromF<TX>(toF(*out) + roundTo<TX>(s[0]));  // rmsnorm.cu's residual: x + (rounded) addend
    } else {
      const float g = roundTo<TX>(s[0]), u = roundTo<TX>(s[NW - 1]);  // the gate/up GEMV's stored outputs
      *out = fromF<TX>(g / (1.f + __expf(-g)) * u);                 // silu-mul.cu
    }
  }
}

template <typename TX, typename T, bool Norm, Epi E>
void gemvFusedRows(const void* x, const void* normW, float eps, const void* W, void* y, int R, int N, int K, cudaStream_t s) {
  static int sms = 0;
  if (!sms) { int dev = 0; cudaGetDevice(&dev); cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev); if (sms <= 0) sms = 132; }
  int wpr = 1;  // as gemv.cu: aim for >= 4 blocks of 8 warps per SM
  while (wpr < kWarps && (long)N * wpr < 16L * sms && K / (wpr * 2) >= 32 * (16 / (int)sizeof(T)) * 2) wpr *= 2;
  const int blocks = (N + kWarps / wpr - 1) / (kWarps / wpr);
  const TX* xx = (const TX*)x; const TX* g = (const TX*)normW; const T* ww = (const T*)W; TX* yy = (TX*)y;
  switch (R) {
#define PDS_GEMV_FUSED_CASE(r) case r: launchPdl(gemvFusedKernel<TX, T, r, Norm, E>, blocks, kWarps * 32, 0, s, xx, g, eps, ww, yy, N, K, wpr); break;
    PDS_GEMV_FUSED_CASE(1) PDS_GEMV_FUSED_CASE(2) PDS_GEMV_FUSED_CASE(3) PDS_GEMV_FUSED_CASE(4)
    PDS_GEMV_FUSED_CASE(5) PDS_GEMV_FUSED_CASE(6) PDS_GEMV_FUSED_CASE(7) PDS_GEMV_FUSED_CASE(8)
#undef PDS_GEMV_FUSED_CASE
    default: throw std::runtime_error("CUDA backend: fused gemv: too many rows");
  }
}

template <bool Norm, Epi E>
void dispatchFused(DType xt, DType t, const void* x, const void* normW, float eps, const void* W, void* y, int T, int N, int K,
                   cudaStream_t s, const char* what) {
  if (T <= 0 || N <= 0) return;
  if (K % (16 / (int)dtypeSize(t))) throw std::runtime_error(std::string("CUDA backend: ") + what + ": K not a multiple of the vector width");
  if (xt != t && xt != DType::F32) throw std::runtime_error(std::string("CUDA backend: ") + what + ": x must be in the weight dtype or f32");
  dispatchDType(t, [&](auto tag) {
    using E_ = decltype(tag);
    if (xt != t) gemvFusedRows<float, E_, Norm, E>(x, normW, eps, W, y, T, N, K, s);
    else gemvFusedRows<E_, E_, Norm, E>(x, normW, eps, W, y, T, N, K, s);
  });
  checkLaunch(what);
}

}  // namespace

void launchGemvNorm(DType xt, DType t, const void* x, const void* normW, float eps, const void* W, void* y, int T, int N, int K,
                    cudaStream_t s) {
  dispatchFused<true, Epi::Store>(xt, t, x, normW, eps, W, y, T, N, K, s, "gemv_norm");
}

void launchGemvNormSwiGlu(DType xt, DType t, const void* x, const void* normW, float eps, const void* Wgu, void* act, int T, int I,
                          int K, cudaStream_t s) {
  dispatchFused<true, Epi::SwiGlu>(xt, t, x, normW, eps, Wgu, act, T, I, K, s, "gemv_norm_swiglu");
}

void launchGemvResidual(DType xt, DType t, const void* a, const void* W, void* x, int T, int N, int K, cudaStream_t s) {
  dispatchFused<false, Epi::Residual>(xt, t, a, nullptr, 0.f, W, x, T, N, K, s, "gemv_residual");
}

}  // namespace pds::cuda
