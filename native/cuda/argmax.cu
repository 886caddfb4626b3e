// Row-wise argmax over f32 logits (greedy sampling on the device); lowest index wins ties.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

__global__ void argmaxKernel(const float* logits, int V, int32_t* out) {
  const float* row = logits + (size_t)blockIdx.x * V;
  float best = -INFINITY; int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = row[i];
    if (v > best || (v == best && i < bi)) { best = v; bi = i; }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > best || (ov == best && oi < bi)) { best = ov; bi = oi; }
  }
  __shared__ float sv[32]; __shared__ int si[32];
  if ((threadIdx.x & 31) == 0) { sv[threadIdx.x >> 5] = best; si[threadIdx.x >> 5] = bi; }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < (int)(blockDim.x >> 5); ++w)
      if (sv[w] > best || (sv[w] == best && si[w] < bi)) { best = sv[w]; bi = si[w]; }
    out[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;  // all-NaN row: 0
  }
}

void launchArgmax(const float* logits, int rows, int V, int32_t* out, cudaStream_t s) {
  if (rows <= 0) return;
  argmaxKernel<<<rows, 1024, 0, s>>>(logits, V, out);
  checkLaunch("argmax");
}

}  // namespace pds::cuda
