// Element-wise dtype conversion (weight upload, hi/lo split of f32 GEMM operands) and deterministic random
// fill (dummy weights).
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

template <typename D, typename S>
__global__ void convertKernel(D* out, const S* in, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = fromF<D>(toF(in[i]));
}

template <typename T>
__global__ void splitHiLoKernel(const float* x, T* hi, T* lo, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    const T h = fromF<T>(v);
    hi[i] = h;
    lo[i] = fromF<T>(v - toF(h));
  }
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void fillRandomKernel(T* out, size_t n, uint64_t seed, float scale, float offset) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + i);
    const float u = (float)(h >> 40) * (1.f / 8388608.f) - 1.f;  // 24 bits -> [-1, 1)
    out[i] = fromF<T>(offset + scale * u);
  }
}

static int gridFor(size_t n) { return (int)std::min<size_t>((n + 255) / 256, 132 * 32); }

void launchConvert(DType dst, void* out, DType src, const void* in, size_t n, cudaStream_t s) {
  if (!n) return;
  dispatchDType(dst, [&](auto dtag) {
    using DT = decltype(dtag);
    dispatchDType(src, [&](auto stag) {
      using ST = decltype(stag);
      convertKernel<DT, ST><<<gridFor(n), 256, 0, s>>>((DT*)out, (const ST*)in, n);
    });
  });
  checkLaunch("convert");
}

void launchFillRandom(DType t, void* out, size_t n, uint64_t seed, float scale, float offset, cudaStream_t s) {
  if (!n) return;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    fillRandomKernel<E><<<gridFor(n), 256, 0, s>>>((E*)out, n, seed, scale, offset);
  });
  checkLaunch("fill_random");
}

void launchSplitHiLo(DType t, const float* x, void* hi, void* lo, size_t n, cudaStream_t s) {
  if (n == 0) return;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    splitHiLoKernel<E><<<gridFor(n), 256, 0, s>>>(x, (E*)hi, (E*)lo, n);
  });
  checkLaunch("split_hi_lo");
}

}  // namespace pds::cuda
