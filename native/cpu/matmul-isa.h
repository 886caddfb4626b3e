// Per-ISA matmul entry points (matmul.cc: AVX2, matmul.avx512.cc: AVX-512); matmul() picks one at run time.
#pragma once
#include "kernels.h"

namespace pds::cpu {
void matmulAvx2(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                bool accumulate);
void matmulAvx512(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                  bool accumulate);
double matmulPeakAvx2(ThreadPool& pool);
double matmulPeakAvx512(ThreadPool& pool);
}  // namespace pds::cpu
