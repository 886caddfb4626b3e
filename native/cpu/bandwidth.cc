// Memory probes for benchmark ratios: single-thread memcpy and multi-thread read bandwidth.
#include <immintrin.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace pds::cpu {

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
struct Buf {
  void* p;
  explicit Buf(size_t n) : p(std::aligned_alloc(64, (n + 63) / 64 * 64)) {
    if (!p) throw std::bad_alloc();
  }
  ~Buf() { std::free(p); }
};
}  // namespace

double measureMemcpyGBs(size_t bytes, int iters) {
  Buf a(bytes), b(bytes);
  std::memset(a.p, 1, bytes);
  std::memset(b.p, 2, bytes);
  std::memcpy(b.p, a.p, bytes);  // warm
  double best = 0;
  for (int i = 0; i < iters; i++) {
    double t0 = now();
    std::memcpy(b.p, a.p, bytes);
    asm volatile("" : : "r"(b.p), "r"(a.p) : "memory");  // the copy is observable: not elided
    double dt = now() - t0;
    if (dt > 0 && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
  }
  return best;
}

double measureReadGBs(ThreadPool& pool, size_t bytes, int iters) {
  Buf a(bytes);
  const size_t n = bytes / 32;  // __m256 units
  pool.parallelRange(static_cast<int64_t>(n), 1024, [&](int64_t b, int64_t e) {
    std::memset(static_cast<char*>(a.p) + b * 32, 1, (e - b) * 32);  // first touch on the reading thread
  });
  double best = 0;
  volatile float sink = 0;
  for (int it = 0; it < iters + 1; it++) {
    double t0 = now();
    pool.parallelRange(static_cast<int64_t>(n), 1024, [&](int64_t b, int64_t e) {
      const __m256* p = static_cast<const __m256*>(a.p);
      __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        s0 = _mm256_add_ps(s0, p[i]);
        s1 = _mm256_add_ps(s1, p[i + 1]);
        s2 = _mm256_add_ps(s2, p[i + 2]);
        s3 = _mm256_add_ps(s3, p[i + 3]);
      }
      __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
      float f[8];
      _mm256_storeu_ps(f, s);
      sink = sink + f[0];
    });
    double dt = now() - t0;
    if (it > 0 && dt > 0 && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
  }
  return best;
}

}  // namespace pds::cpu
