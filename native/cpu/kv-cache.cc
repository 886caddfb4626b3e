// Writing new K/V rows into the paged cache.
#include <stdexcept>
#include <cstring>
#include <string>

#include "dtype.h"
#include "kernels.h"

namespace pds::cpu {

void kvWrite(const KvLayer& kv, const float* k, int ldk, const float* v, int ldv, const int32_t* slotMapping, int T) {
  const size_t rowElems = static_cast<size_t>(kv.kvHeads) * kv.headDim;
  const size_t es = dtypeSize(kv.dtype);
  const int64_t slots = static_cast<int64_t>(kv.numBlocks) * kv.blockSize;
  for (int t = 0; t < T; t++) {
    int64_t s = slotMapping[t];
    if (s < 0) continue;
    if (s >= slots)
      throw std::out_of_range("slot " + std::to_string(s) + " at row " + std::to_string(t) + " is past the KV cache (" +
                              std::to_string(slots) + " slots)");
    fromF32(k + static_cast<size_t>(t) * ldk, kv.dtype, static_cast<char*>(kv.k) + s * rowElems * es, rowElems);
    fromF32(v + static_cast<size_t>(t) * ldv, kv.dtype, static_cast<char*>(kv.v) + s * rowElems * es, rowElems);
  }
}

}  // namespace pds::cpu

namespace pds::cpu {

namespace {
template <bool Gather>
void kvCopyAll(ThreadPool& pool, const KvLayer* layers, int numLayers, const int32_t* blockIds, int numBlocks,
               int numTokens, char* host) {
  if (numLayers <= 0) return;
  const KvLayer& k0 = layers[0];
  if (numTokens < 0 || numBlocks < 0 || static_cast<int64_t>(numTokens) > static_cast<int64_t>(numBlocks) * k0.blockSize)
    throw std::invalid_argument(std::to_string(numTokens) + " tokens do not fit in " + std::to_string(numBlocks) +
                                " blocks of " + std::to_string(k0.blockSize));
  const int used = (numTokens + k0.blockSize - 1) / k0.blockSize;
  for (int i = 0; i < used; i++)
    if (blockIds[i] < 0 || blockIds[i] >= k0.numBlocks)
      throw std::out_of_range("block id " + std::to_string(blockIds[i]) + " is outside the KV cache (" +
                              std::to_string(k0.numBlocks) + " blocks)");
  const size_t tokBytes = static_cast<size_t>(k0.kvHeads) * k0.headDim * dtypeSize(k0.dtype);
  pool.parallelRange(static_cast<int64_t>(numLayers) * 2, 1, [&](int64_t b, int64_t e) {
    for (int64_t lk = b; lk < e; lk++) {
      const KvLayer& L = layers[lk / 2];
      char* cache = static_cast<char*>(lk % 2 == 0 ? L.k : L.v);
      char* h = host + static_cast<size_t>(lk) * numTokens * tokBytes;
      for (int i = 0; i < used; i++) {
        int ntok = numTokens - i * L.blockSize;
        if (ntok > L.blockSize) ntok = L.blockSize;
        char* c = cache + static_cast<size_t>(blockIds[i]) * L.blockSize * tokBytes;
        char* hh = h + static_cast<size_t>(i) * L.blockSize * tokBytes;
        if (Gather)
          std::memcpy(hh, c, ntok * tokBytes);
        else
          std::memcpy(c, hh, ntok * tokBytes);
      }
    }
  });
}
}  // namespace

void kvGatherAll(ThreadPool& pool, const KvLayer* layers, int numLayers, const int32_t* blockIds, int numBlocks,
                 int numTokens, void* dst) {
  kvCopyAll<true>(pool, layers, numLayers, blockIds, numBlocks, numTokens, static_cast<char*>(dst));
}
void kvScatterAll(ThreadPool& pool, const KvLayer* layers, int numLayers, const int32_t* blockIds, int numBlocks,
                  int numTokens, const void* src) {
  kvCopyAll<false>(pool, layers, numLayers, blockIds, numBlocks, numTokens,
                   const_cast<char*>(static_cast<const char*>(src)));
}

}  // namespace pds::cpu
