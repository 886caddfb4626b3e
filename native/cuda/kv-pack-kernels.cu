// Paged KV <-> contiguous staging copies for KV transfer: one launch moves every (layer, K|V) plane of a
// chunk, so the host sees one large copy per chunk instead of one per block.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

// grid.x walks 16-byte words of one plane's tokens; grid.y = plane.
template <bool kPack>
__global__ void kvCopyKernel(uint8_t* cache, size_t cachePlaneBytes, uint8_t* staging, const int32_t* blockIds,
                             int numTokens, int blockSize, size_t rowWords) {
  const size_t p = blockIdx.y;
  uint4* c = reinterpret_cast<uint4*>(cache + p * cachePlaneBytes);
  uint4* st = reinterpret_cast<uint4*>(staging + p * (size_t)numTokens * rowWords * 16);
  const size_t total = (size_t)numTokens * rowWords;
  for (size_t w = blockIdx.x * (size_t)blockDim.x + threadIdx.x; w < total; w += (size_t)gridDim.x * blockDim.x) {
    const size_t tok = w / rowWords, off = w % rowWords;
    const size_t slot = (size_t)blockIds[tok / blockSize] * blockSize + tok % blockSize;
    if (kPack) st[w] = c[slot * rowWords + off];
    else c[slot * rowWords + off] = st[w];
  }
}

static void launchKvCopy(bool pack, void* cache, size_t cachePlaneBytes, void* staging, int planes,
                         const int32_t* blockIds, int numTokens, int blockSize, size_t rowBytes, cudaStream_t s) {
  if (planes <= 0 || numTokens <= 0) return;
  if (rowBytes % 16) throw std::runtime_error("CUDA backend: kv transfer: row bytes not a multiple of 16");
  const size_t words = (size_t)numTokens * (rowBytes / 16);
  dim3 grid((unsigned)std::min<size_t>((words + 255) / 256, 1024), planes);
  if (pack)
    kvCopyKernel<true><<<grid, 256, 0, s>>>((uint8_t*)cache, cachePlaneBytes, (uint8_t*)staging, blockIds, numTokens,
                                            blockSize, rowBytes / 16);
  else
    kvCopyKernel<false><<<grid, 256, 0, s>>>((uint8_t*)cache, cachePlaneBytes, (uint8_t*)staging, blockIds, numTokens,
                                             blockSize, rowBytes / 16);
  checkLaunch(pack ? "kv_pack" : "kv_unpack");
}

void launchKvPack(const void* cache, size_t cachePlaneBytes, void* staging, int planes, const int32_t* blockIds,
                  int numTokens, int blockSize, size_t rowBytes, cudaStream_t s) {
  launchKvCopy(true, const_cast<void*>(cache), cachePlaneBytes, staging, planes, blockIds, numTokens, blockSize,
               rowBytes, s);
}
void launchKvUnpack(void* cache, size_t cachePlaneBytes, const void* staging, int planes, const int32_t* blockIds,
                    int numTokens, int blockSize, size_t rowBytes, cudaStream_t s) {
  launchKvCopy(false, cache, cachePlaneBytes, const_cast<void*>(staging), planes, blockIds, numTokens, blockSize,
               rowBytes, s);
}

}  // namespace pds::cuda
