// KV copy kernel tests: paged cache <-> contiguous staging (launchKvPack / launchKvUnpack) (declared in kernel-tests.h; run in order by runKernelTests, kernel-tests.cu).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../kernels.h"
#include "kernel-tests.h"

namespace pds::test::kernels {
using namespace pds::cuda;

void testKvPack() {
  const int blocks = 20, bs = 16, planes = 3, tokens = 37;
  const size_t rowBytes = 2 * 64 * 2;
  const size_t plane = (size_t)blocks * bs * rowBytes;
  std::vector<uint8_t> cache(planes * plane);
  for (auto& b : cache) b = (uint8_t)rng();
  std::vector<int32_t> ids = {7, 2, 19};
  void *dc, *ds, *dc2;
  TCHECK(cudaMalloc(&dc, cache.size())); TCHECK(cudaMalloc(&dc2, cache.size()));
  TCHECK(cudaMalloc(&ds, planes * tokens * rowBytes));
  TCHECK(cudaMemcpy(dc, cache.data(), cache.size(), cudaMemcpyHostToDevice));
  TCHECK(cudaMemset(dc2, 0, cache.size()));
  int32_t* di = devInts(ids);
  launchKvPack(dc, plane, ds, planes, di, tokens, bs, rowBytes, 0);
  launchKvUnpack(dc2, plane, ds, planes, di, tokens, bs, rowBytes, 0);
  sync();
  std::vector<uint8_t> st(planes * tokens * rowBytes), back(cache.size());
  TCHECK(cudaMemcpy(st.data(), ds, st.size(), cudaMemcpyDeviceToHost));
  TCHECK(cudaMemcpy(back.data(), dc2, back.size(), cudaMemcpyDeviceToHost));
  bool ok = true;
  for (int p = 0; p < planes; ++p)
    for (int tk = 0; tk < tokens; ++tk) {
      const size_t slot = (size_t)ids[tk / bs] * bs + tk % bs;
      const uint8_t* src = &cache[p * plane + slot * rowBytes];
      ok = ok && !std::memcmp(&st[(p * tokens + tk) * rowBytes], src, rowBytes);
      ok = ok && !std::memcmp(&back[p * plane + slot * rowBytes], src, rowBytes);
    }
  results().record(ok, "kv_pack/unpack (3 planes, 37 tokens, blocks 7,2,19)", "exact");
  cudaFree(dc); cudaFree(dc2); cudaFree(ds); cudaFree(di);
}

}  // namespace pds::test::kernels
