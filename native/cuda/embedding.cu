// Token embedding lookup with bounds checking (bad ids write zeros and raise a device flag). The table
// is in the weight dtype; out in the activation dtype (the same, or f32).
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

template <typename TW, typename TA>
__global__ void embeddingKernel(const int32_t* ids, const TW* table, int vocab, int hidden, TA* out, int* errFlag) {
  pdlWait();
  pdlTrigger();
  const int t = blockIdx.x;
  const int id = ids[t];
  TA* dst = out + (size_t)t * hidden;
  if (id < 0 || id >= vocab) {
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = fromF<TA>(0.f);
    if (threadIdx.x == 0 && errFlag) atomicExch(errFlag, 1);
    return;
  }
  const TW* src = table + (size_t)id * hidden;
  constexpr int N = Vec<TW>::N;
  if constexpr (sizeof(TW) == sizeof(TA)) {
    if (hidden % N == 0) {
      for (int i = threadIdx.x * N; i < hidden; i += blockDim.x * N) {
        Vec<TW> v; v.load(src + i); v.store(reinterpret_cast<TW*>(dst + i));
      }
      return;
    }
  }
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = fromF<TA>(toF(src[i]));
}

void launchEmbedding(DType t, DType outT, const int32_t* ids, int T, const void* table, int vocab, int hidden,
                     void* out, int* errFlag, cudaStream_t s) {
  if (T <= 0) return;
  if (outT != t && outT != DType::F32) throw std::runtime_error("CUDA backend: embedding: output must be the table dtype or f32");
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    if (outT == t) launchPdl(embeddingKernel<E, E>, T, 128, 0, s, ids, (const E*)table, vocab, hidden, (E*)out, errFlag);
    else launchPdl(embeddingKernel<E, float>, T, 128, 0, s, ids, (const E*)table, vocab, hidden, (float*)out, errFlag);
  });
  checkLaunch("embedding");
}

}  // namespace pds::cuda
