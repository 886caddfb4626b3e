// RMSNorm over rows, with an optional fused residual add (x += addend, then normalize x) and an optional
// row index list (normalize only the rows that feed the lm_head).
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

template <typename T>
__global__ void rmsNormKernel(T* x, const T* addend, const T* w, T* out, const int32_t* rowIdx, int hidden,
                              float eps) {
  pdlWait();
  pdlTrigger();
  constexpr int N = Vec<T>::N;
  const int r = blockIdx.x;
  const int src = rowIdx ? rowIdx[r] : r;
  T* xr = x + (size_t)src * hidden;
  const T* ar = addend ? addend + (size_t)src * hidden : nullptr;
  float ss = 0.f;
  for (int i = threadIdx.x * N; i < hidden; i += blockDim.x * N) {
    Vec<T> v; v.load(xr + i);
    if (ar) {
      Vec<T> a; a.load(ar + i);
#pragma unroll
      for (int j = 0; j < N; ++j) v.set(j, v.get(j) + a.get(j));
      v.store(xr + i);  // x now holds the (rounded) residual sum
    }
#pragma unroll
    for (int j = 0; j < N; ++j) { const float f = v.get(j); ss += f * f; }
  }
  __shared__ float red[32];
  ss = warpSum(ss);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.f;
    v = warpSum(v);
    if (threadIdx.x == 0) red[0] = v;
  }
  __syncthreads();
  const float inv = rsqrtf(red[0] / hidden + eps);
  T* o = out + (size_t)r * hidden;
  for (int i = threadIdx.x * N; i < hidden; i += blockDim.x * N) {
    Vec<T> v, g; v.load(xr + i); g.load(w + i);
#pragma unroll
    for (int j = 0; j < N; ++j) v.set(j, v.get(j) * inv * g.get(j));
    v.store(o + i);
  }
}

void launchRmsNorm(DType t, void* x, const void* addend, const void* w, void* out, const int32_t* rowIdx, int rows,
                   int hidden, float eps, cudaStream_t s) {
  if (rows <= 0) return;
  if (hidden % (16 / (int)dtypeSize(t)) != 0) throw std::runtime_error("CUDA backend: rmsnorm: hidden size not a multiple of the vector width");
  const int vecs = hidden / (16 / (int)dtypeSize(t));
  const int threads = vecs >= 512 ? 512 : vecs >= 256 ? 256 : vecs >= 128 ? 128 : 64;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    launchPdl(rmsNormKernel<E>, rows, threads, 0, s, (E*)x, (const E*)addend, (const E*)w, (E*)out, rowIdx, hidden, eps);
  });
  checkLaunch("rmsnorm");
}

}  // namespace pds::cuda
