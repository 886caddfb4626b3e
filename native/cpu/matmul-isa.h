// Per-ISA matmul entry points (matmul.cc: AVX2, matmul.avx512.cc: AVX-512, matmul.avx512bf16.cc: bf16 W with
// AVX512-BF16); matmul() picks one at run time.
#pragma once
#include "kernels.h"

namespace pds::cpu {
void matmulAvx2(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                bool accumulate);
void matmulAvx512(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                  bool accumulate);
// How matmulAvx512Bf16 carries the f32 x (see matmul.avx512bf16.cc): Split = hi + lo bf16 (f32-level results),
// Round = x rounded to bf16 (llama.cpp's precision, faster prefill).
enum class Bf16Dot { Split, Round };
// The engine's choice: PDSERVE_CPU_BF16_DOT=round selects Round, anything else Split (read once).
Bf16Dot bf16DotMode();
// bf16 W only. Call only when hasAvx512Bf16().
void matmulAvx512Bf16(ThreadPool& pool, const float* x, int M, int K, const uint16_t* W, int N, float* y, int ldy,
                      bool accumulate, Bf16Dot mode);
// The f32-activation kernels (AVX-512 or AVX2), whatever the CPU's BF16 support: exact products of x and W.
void matmulExact(ThreadPool& pool, const float* x, int M, int K, const void* W, DType wdt, int N, float* y, int ldy,
                 bool accumulate);
double matmulPeakAvx2(ThreadPool& pool);
double matmulPeakAvx512(ThreadPool& pool);
}  // namespace pds::cpu
