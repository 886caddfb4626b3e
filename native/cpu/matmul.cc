// matmul(): AVX2 instantiation plus the run-time choice between AVX2 and AVX-512.
#include <cstdlib>
#include <ctime>
#include <string>

#include "matmul-impl.h"
#include "matmul-isa.h"

namespace pds::cpu {

// PDSERVE_NO_AVX512=1 forces the AVX2 kernels (to test them on an AVX-512 machine).
bool hasAvx512() {
  static const bool v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                        !(std::getenv("PDSERVE_NO_AVX512") && std::string(std::getenv("PDSERVE_NO_AVX512")) == "1");
  return v;
}

void matmulAvx2(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                bool accumulate) {
  matmulDispatch(pool, x, M, K, W, wdt, N, y, ldy, accumulate);
}
double matmulPeakAvx2(ThreadPool& pool) { return microKernelPeak(pool); }

void matmulExact(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                 bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (hasAvx512())
    matmulAvx512(pool, x, M, K, W, wdt, N, y, ldy, accumulate);
  else
    matmulAvx2(pool, x, M, K, W, wdt, N, y, ldy, accumulate);
}

void matmul(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
            bool accumulate) {
  if (wdt == DType::BF16 && hasAvx512Bf16())
    matmulAvx512Bf16(pool, x, M, K, static_cast<const uint16_t*>(W), N, y, ldy, accumulate, bf16DotMode());
  else
    matmulExact(pool, x, M, K, W, wdt, N, y, ldy, accumulate);
}

double measureMatmulPeakGflops(ThreadPool& pool) {
  return hasAvx512() ? matmulPeakAvx512(pool) : matmulPeakAvx2(pool);
}

}  // namespace pds::cpu
