// Matmul kernel tests: cuBLAS GEMM, GEMV, GEMV fused with SiLU, f32 x over bf16/f16 weights (declared in kernel-tests.h; run in order by runKernelTests, kernel-tests.cu).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../kernels.h"
#include "kernel-tests.h"

namespace pds::test::kernels {
using namespace pds::cuda;

// ref[m, n] = sum_k x[m, k] * w[n, k], in double (x [M, K], w [N, K]).
template <typename X>
std::vector<double> refMatmul(const std::vector<X>& x, const std::vector<float>& w, int M, int N, int K) {
  std::vector<double> ref((size_t)M * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
      ref[(size_t)m * N + n] = s;
    }
  return ref;
}

// SwiGLU of a [M, 2K] gate/up buffer: silu(g) * u per [M, K] element, rounded through *roundAs when given
// (what the separate SiLU kernel would store).
std::vector<double> siluInputs(const std::vector<float>& gu, int M, int K, const DType* roundAs) {
  std::vector<double> a((size_t)M * K);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) {
      const double g = gu[(size_t)m * 2 * K + k], u = gu[(size_t)m * 2 * K + K + k], v = g / (1 + std::exp(-g)) * u;
      a[(size_t)m * K + k] = roundAs ? roundTo(*roundAs, (float)v) : v;
    }
  return a;
}

void testMatmul(DType t, int M, int N, int K, bool outF32, bool gemv, Cublas* blas) {
  auto x = randomVec(rng, (size_t)M * K, -1, 1, t), w = randomVec(rng, (size_t)N * K, -1, 1, t);
  void *dx = toDevice(t, x), *dw = toDevice(t, w);
  const DType ot = outF32 ? DType::F32 : t;
  void* dy = toDevice(ot, std::vector<float>((size_t)M * N, NAN));
  if (gemv) launchGemv(t, t, dx, dw, dy, M, N, K, outF32, 0);
  else blas->gemm(t, dx, dw, dy, M, N, K, outF32);
  sync();
  auto got = fromDevice(ot, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(x, w, M, N, K);
  char nm[128];
  std::snprintf(nm, sizeof nm, "%s/%s M=%d N=%d K=%d out=%s", gemv ? "gemv" : "cublas_gemm", tag(t).c_str(), M, N, K,
                outF32 ? "f32" : tag(t).c_str());
  check(true, nm, relErr(got, ref), outF32 ? (t == DType::F32 ? 1e-5 : 1e-5) : tolFor(t));
  cudaFree(dx); cudaFree(dw); cudaFree(dy);
}

// f32 activations x bf16/f16 weights (the f32-compute mode): GEMV reads f32 x; cuBLAS gets x split into hi + lo
// weight-dtype operands, two GEMMs accumulated (as CudaBackend::linear). x is NOT rounded: the tolerance
// (3e-5) fails if x were rounded to the weight dtype once (~2e-3 for bf16).
void testMatmulMixed(DType wt, int M, int N, int K, bool gemv, Cublas* blas) {
  auto x = randomVec(rng, (size_t)M * K, -1, 1, DType::F32), w = randomVec(rng, (size_t)N * K, -1, 1, wt);
  void *dx = toDevice(DType::F32, x), *dw = toDevice(wt, w);
  void* dy = toDevice(DType::F32, std::vector<float>((size_t)M * N, NAN));
  void *hi = nullptr, *lo = nullptr;
  if (gemv) launchGemv(DType::F32, wt, dx, dw, dy, M, N, K, false, 0);
  else {
    TCHECK(cudaMalloc(&hi, (size_t)M * K * 2)); TCHECK(cudaMalloc(&lo, (size_t)M * K * 2));
    launchSplitHiLo(wt, (const float*)dx, hi, lo, (size_t)M * K, 0);
    blas->gemm(wt, hi, dw, dy, M, N, K, true);
    blas->gemm(wt, lo, dw, dy, M, N, K, true, 0, true);
  }
  sync();
  auto got = fromDevice(DType::F32, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(x, w, M, N, K);
  char nm[128];
  std::snprintf(nm, sizeof nm, "%s/f32 x %s M=%d N=%d K=%d", gemv ? "gemv" : "cublas_split_gemm", tag(wt).c_str(), M, N, K);
  check(true, nm, relErr(got, ref), 3e-5);
  for (void* p : {dx, dw, dy, hi, lo}) if (p) cudaFree(p);
}

void testGemvSiluMixed(DType wt) {
  const int M = 3, N = 64, K = 512;
  auto gu = randomVec(rng, (size_t)M * 2 * K, -3, 3, DType::F32), w = randomVec(rng, (size_t)N * K, -1, 1, wt);
  void *dg = toDevice(DType::F32, gu), *dw = toDevice(wt, w), *dy = toDevice(DType::F32, std::vector<float>((size_t)M * N, NAN));
  launchGemvSilu(DType::F32, wt, dg, dw, dy, M, N, K, 0);
  sync();
  auto got = fromDevice(DType::F32, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(siluInputs(gu, M, K, nullptr), w, M, N, K);  // f32 x: no rounding
  check(true, "gemv_silu/f32 x " + tag(wt) + " M=3 N=64 K=512", relErr(got, ref), 3e-5);
  cudaFree(dg); cudaFree(dw); cudaFree(dy);
}

void testGemvSilu(DType t) {
  const int M = 2, N = 64, K = 512;
  auto gu = randomVec(rng, (size_t)M * 2 * K, -3, 3, t), w = randomVec(rng, (size_t)N * K, -1, 1, t);
  void *dg = toDevice(t, gu), *dw = toDevice(t, w), *dy = toDevice(t, std::vector<float>((size_t)M * N, NAN));
  launchGemvSilu(t, t, dg, dw, dy, M, N, K, 0);
  sync();
  auto got = fromDevice(t, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(siluInputs(gu, M, K, &t), w, M, N, K);
  check(true, "gemv_silu/" + tag(t) + " M=2 N=64 K=512", relErr(got, ref), std::max(tolFor(t), 1e-5));
  cudaFree(dg); cudaFree(dw); cudaFree(dy);
}

}  // namespace pds::test::kernels
