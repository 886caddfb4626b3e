// Token embedding lookup with bounds checking (bad ids write zeros and raise a device flag).
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

template <typename T>
__global__ void embeddingKernel(const int32_t* ids, const T* table, int vocab, int hidden, T* out, int* errFlag) {
  const int t = blockIdx.x;
  const int id = ids[t];
  T* dst = out + (size_t)t * hidden;
  if (id < 0 || id >= vocab) {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = fromF<T>(0.f);
    if (threadIdx.x == 0 && errFlag) atomicExch(errFlag, 1);
    return;
  }
  const T* src = table + (size_t)id * hidden;
  constexpr int N = Vec<T>::N;
  if (hidden % N == 0) {
    for (int i = threadIdx.x * N; i < hidden; i += blockDim.x * N) {
      Vec<T> v; v.load(src + i); v.store(dst + i);
    }
  } else {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = src[i];
  }
}

void launchEmbedding(DType t, const int32_t* ids, int T, const void* table, int vocab, int hidden, void* out,
                     int* errFlag, cudaStream_t s) {
  if (T <= 0) return;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    embeddingKernel<E><<<T, 128, 0, s>>>(ids, (const E*)table, vocab, hidden, (E*)out, errFlag);
  });
  checkLaunch("embedding");
}

}  // namespace pds::cuda
