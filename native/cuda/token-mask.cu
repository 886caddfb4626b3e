// Grammar masks on the device (BatchDesc::tokenMasks): rejected ids of the masked logits rows become -inf
// before the token choice. Writes only (no logits read): one thread per id, a warp's 32 ids share one mask
// word. Host twin: pds/token-mask.h.
#include <cmath>

#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

__global__ void tokenMaskKernel(float* logits, int V, const int32_t* rows, const int32_t* masks, int words) {
  const int m = blockIdx.y;
  const int id = blockIdx.x * blockDim.x + threadIdx.x;
  if (id >= V) return;
  const uint32_t bits = (uint32_t)__ldg(masks + (size_t)m * words + (id >> 5));
  if (!((bits >> (id & 31)) & 1u)) logits[(size_t)__ldg(rows + m) * V + id] = -INFINITY;
}

void launchTokenMask(float* logits, int V, const int32_t* rows, int M, const int32_t* masks, cudaStream_t s) {
  if (M <= 0 || V <= 0) return;
  if (M > 65535) throw std::runtime_error("CUDA backend: token mask: too many masked rows");
  dim3 grid((V + 255) / 256, M);
  tokenMaskKernel<<<grid, 256, 0, s>>>(logits, V, rows, masks, (V + 31) / 32);
  checkLaunch("token_mask");
}

}  // namespace pds::cuda
