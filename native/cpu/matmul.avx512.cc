// AVX-512 instantiation of the matmul kernels (compiled with -mavx512f; called only when the CPU has it).
#include <ctime>

#include "matmul-impl.h"
#include "matmul-isa.h"

namespace pds::cpu {
void matmulAvx512(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                  bool accumulate) {
  matmulDispatch(pool, x, M, K, W, wdt, N, y, ldy, accumulate);
}
double matmulPeakAvx512(ThreadPool& pool) { return microKernelPeak(pool); }
}  // namespace pds::cpu
