// Merges the per-split partial attention results (unnormalized o, max m, sum l) of paged-attention.cu:
// out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s, M = max_s m_s, over the splits the context needs.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

constexpr int kMaxCombineSplits = 1024;

// Block per (token, head): split weights w_s = e^(m_s - M) / L computed once into shared memory, then
// each thread sums its output elements over the splits.
template <typename T>
__global__ void attentionCombineKernel(PagedAttnArgs a) {
  pdlWait();
  pdlTrigger();
  __shared__ float wS[kMaxCombineSplits];
  __shared__ float red[32];
  const int t = blockIdx.x, h = blockIdx.y, D = a.D;
  const int ns = min((a.tokenCtx[t] + a.splitSize - 1) / a.splitSize, kMaxCombineSplits);
  const size_t th = (size_t)t * a.nH + h;
  const float* ml = a.wsML + th * a.maxSplits * 2;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float m = -INFINITY;
  for (int s = threadIdx.x; s < ns; s += blockDim.x) m = fmaxf(m, ml[2 * s]);
  m = warpMax(m);
  if (lane == 0) red[warp] = m;
  __syncthreads();
  float M = red[0];
  for (int w = 1; w < warps; ++w) M = fmaxf(M, red[w]);
  __syncthreads();
  float l = 0.f;
  for (int s = threadIdx.x; s < ns; s += blockDim.x) {
    const float e = __expf(ml[2 * s] - M);
    wS[s] = e;
    l += e * ml[2 * s + 1];
  }
  l = warpSum(l);
  if (lane == 0) red[warp] = l;
  __syncthreads();
  float L = 0.f;
  for (int w = 0; w < warps; ++w) L += red[w];
  const float invL = L > 0.f ? 1.f / L : 0.f;
  T* out = (T*)a.out + th * D;
  const float* o = a.wsO + th * a.maxSplits * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    int s = 0;
    for (; s + 4 <= ns; s += 4)
      acc += wS[s] * o[(size_t)s * D + d] + wS[s + 1] * o[(size_t)(s + 1) * D + d] +
             wS[s + 2] * o[(size_t)(s + 2) * D + d] + wS[s + 3] * o[(size_t)(s + 3) * D + d];
    for (; s < ns; ++s) acc += wS[s] * o[(size_t)s * D + d];
    out[d] = fromF<T>(acc * invL);
  }
}

void launchAttentionCombine(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  if (a.maxSplits > kMaxCombineSplits) throw std::runtime_error("CUDA backend: attention combine: too many splits");
  dim3 grid(a.T, a.nH);
  const int threads = a.D >= 128 ? 128 : a.D >= 64 ? 64 : 32;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    launchPdl(attentionCombineKernel<E>, grid, threads, 0, s, a);
  });
  checkLaunch("attention_combine");
}

}  // namespace pds::cuda
