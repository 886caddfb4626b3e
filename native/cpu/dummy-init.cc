// Deterministic pseudo-random fill (splitmix64 per 4096-element chunk, so threads agree on the result).
#include <cmath>

#include "dtype.h"
#include "kernels.h"

namespace pds::cpu {

namespace {
inline uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

void fillRandom(ThreadPool& pool, void* dst, DType t, size_t n, float scale, uint64_t seed, uint64_t stream) {
  constexpr size_t kChunk = 4096;
  const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
  const size_t es = dtypeSize(t);
  pool.parallelRange(chunks, 1, [&](int64_t b, int64_t e) {
    float buf[kChunk];
    for (int64_t c = b; c < e; c++) {
      uint64_t s = seed * 0x632be59bd9b4e019ull ^ (stream + 1) * 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(c);
      splitmix(s);
      size_t base = static_cast<size_t>(c) * kChunk, len = n - base < kChunk ? n - base : kChunk;
      for (size_t i = 0; i < len; i += 2) {
        uint64_t r = splitmix(s);
        // two uniforms in [-1, 1) from 32-bit halves
        buf[i] = (static_cast<int32_t>(r) * (1.0f / 2147483648.0f)) * scale;
        if (i + 1 < len) buf[i + 1] = (static_cast<int32_t>(r >> 32) * (1.0f / 2147483648.0f)) * scale;
      }
      fromF32(buf, t, static_cast<char*>(dst) + base * es, len);
    }
  });
}

}  // namespace pds::cpu
