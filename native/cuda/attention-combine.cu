// Merges the per-split partial attention results (unnormalized o, max m, sum l) of paged-attention.cu:
// out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s, M = max_s m_s, over the splits the context needs.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

template <typename T>
__global__ void attentionCombineKernel(PagedAttnArgs a) {
  const int t = blockIdx.x, h = blockIdx.y, D = a.D;
  const int ns = (a.tokenCtx[t] + a.splitSize - 1) / a.splitSize;
  const size_t th = (size_t)t * a.nH + h;
  const float* ml = a.wsML + th * a.maxSplits * 2;
  float M = -INFINITY;
  for (int s = 0; s < ns; ++s) M = fmaxf(M, ml[2 * s]);
  float L = 0.f;
  for (int s = 0; s < ns; ++s) L += __expf(ml[2 * s] - M) * ml[2 * s + 1];
  const float invL = L > 0.f ? 1.f / L : 0.f;
  T* out = (T*)a.out + th * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.f;
    for (int s = 0; s < ns; ++s) o += __expf(ml[2 * s] - M) * a.wsO[(th * a.maxSplits + s) * D + d];
    out[d] = fromF<T>(o * invL);
  }
}

void launchAttentionCombine(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  dim3 grid(a.T, a.nH);
  const int threads = a.D >= 128 ? 128 : a.D >= 64 ? 64 : 32;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    attentionCombineKernel<E><<<grid, threads, 0, s>>>(a);
  });
  checkLaunch("attention_combine");
}

}  // namespace pds::cuda
