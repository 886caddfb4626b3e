// SwiGLU activation: out = silu(gate) * up, gate and up halves of one [T, 2I] GEMM output.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

template <typename T>
__global__ void siluMulKernel(const T* gu, T* out, int T_, int I) {
  pdlWait();
  pdlTrigger();
  constexpr int N = Vec<T>::N;
  const size_t perRow = I / N;
  const size_t total = (size_t)T_ * perRow;
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < total; v += (size_t)gridDim.x * blockDim.x) {
    const size_t t = v / perRow, i = (v % perRow) * N;
    Vec<T> g, u, o;
    g.load(gu + t * 2 * I + i);
    u.load(gu + t * 2 * I + I + i);
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float a = g.get(j);
      o.set(j, a / (1.f + __expf(-a)) * u.get(j));
    }
    o.store(out + t * I + i);
  }
}

// Scalar variant for intermediate sizes that are not a multiple of the vector width.
template <typename T>
__global__ void siluMulScalarKernel(const T* gu, T* out, int T_, int I) {
  pdlWait();
  pdlTrigger();
  const size_t total = (size_t)T_ * I;
  for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < total; v += (size_t)gridDim.x * blockDim.x) {
    const size_t t = v / I, i = v % I;
    const float a = toF(gu[t * 2 * I + i]);
    out[v] = fromF<T>(a / (1.f + __expf(-a)) * toF(gu[t * 2 * I + I + i]));
  }
}

void launchSiluMul(DType t, const void* gu, void* out, int T, int I, cudaStream_t s) {
  if (T <= 0) return;
  if (I % (16 / (int)dtypeSize(t)) != 0) {
    const size_t total = (size_t)T * I;
    const int blocks = (int)std::min<size_t>((total + 255) / 256, 132 * 16);
    dispatchDType(t, [&](auto tag) {
      using E = decltype(tag);
      launchPdl(siluMulScalarKernel<E>, blocks, 256, 0, s, (const E*)gu, (E*)out, T, I);
    });
    checkLaunch("silu_mul");
    return;
  }
  const size_t total = (size_t)T * I / (16 / dtypeSize(t));
  const int threads = 256;
  const int blocks = (int)std::min<size_t>((total + threads - 1) / threads, 132 * 16);
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    launchPdl(siluMulKernel<E>, blocks, threads, 0, s, (const E*)gu, (E*)out, T, I);
  });
  checkLaunch("silu_mul");
}

}  // namespace pds::cuda
