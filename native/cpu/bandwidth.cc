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
      // 8 interleaved sequential streams with software prefetch: the access pattern of the GEMV tiles,
      // which reads faster than one stream.
      const __m256* p = static_cast<const __m256*>(a.p) + b;
      const int64_t len = (e - b) / 8;
      __m256 s[8];
      for (int r = 0; r < 8; r++) s[r] = _mm256_setzero_ps();
      for (int64_t i = 0; i < len; i++) {
        if ((i & 1) == 0)
          for (int r = 0; r < 8; r++) _mm_prefetch(reinterpret_cast<const char*>(p + r * len + i) + 2048, _MM_HINT_T0);
        for (int r = 0; r < 8; r++) s[r] = _mm256_add_ps(s[r], p[r * len + i]);
      }
      for (int64_t i = 8 * len; i < e - b; i++) s[0] = _mm256_add_ps(s[0], p[i]);
      __m256 t = s[0];
      for (int r = 1; r < 8; r++) t = _mm256_add_ps(t, s[r]);
      float f[8];
      _mm256_storeu_ps(f, t);
      sink = sink + f[0];
    });
    double dt = now() - t0;
    if (it > 0 && dt > 0 && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
  }
  return best;
}

}  // namespace pds::cpu
