// runKernelTests: every kernel family's tests (kernel-tests-*.cu), in one fixed order over one seeded random
// stream, so a seed reproduces the same inputs. Each test records PASS/FAIL through results() (harness.h).
#include "kernel-tests.h"

namespace pds::test {
using namespace pds::test::kernels;

void runKernelTests(uint64_t seed) {
  rng.seed((uint32_t)seed);
  for (DType t : kAll) {
    testEmbedding(t);
    testRmsNorm(t, 64, false, false);
    testRmsNorm(t, 4096, true, false);
    testRmsNorm(t, 1024, true, true);
    testSiluMul(t, 256);
    testSiluMul(t, 172);
    for (int D : {64, 128}) {
      testQkvPrep(t, D, 8, 2, false, false);
      testQkvPrep(t, D, 4, 4, true, false);
      testQkvPrep(t, D, 16, 2, false, true);
    }
    for (int D : {64, 128})
      for (int G : {1, 4, 8}) testPagedAttention(t, D, 2 * G, 2, 256);
  }
  testQkvPrep(DType::BF16, 256, 4, 1, true, true);
  testQkvPrep(DType::F32, 8, 8, 4, false, false);
  testPagedAttention(DType::BF16, 128, 32, 8, 32);   // many splits
  testPagedAttention(DType::F32, 8, 8, 4, 256);      // stories260K shape
  testPagedAttention(DType::F32, 32, 8, 2, 64);      // llama3-tiny shape
  testPagedAttention(DType::BF16, 256, 4, 2, 256);
  testPagedAttention(DType::F16, 128, 16, 1, 256);   // G=16: two head groups per kv head
  // fused kernel: the decode splits (64: one pass for bf16 D=128), few/many splits, one split (direct
  // write), split sizes that are not a multiple of a pass, prefill-like causal rows of one sequence
  for (DType t : kAll) {
    for (int D : {64, 128})
      for (int G : {1, 2, 4, 8}) testPagedAttention(t, D, 2 * G, 2, 64, true);
    testPagedAttention(t, 128, 32, 8, 256, true);
    testPagedAttention(t, 128, 16, 8, 2048, true);      // every context in one split
  }
  testPagedAttention(DType::BF16, 128, 32, 8, 32, true);
  testPagedAttention(DType::BF16, 128, 32, 8, 96, true);
  testPagedAttention(DType::F32, 8, 8, 4, 256, true);     // stories260K shape
  testPagedAttention(DType::F32, 32, 8, 2, 64, true);     // llama3-tiny shape
  testPagedAttention(DType::BF16, 256, 4, 2, 64, true);
  testPagedAttention(DType::BF16, 256, 16, 2, 128, true); // D=256 with G=8
  testPagedAttention(DType::F16, 128, 16, 1, 64, true);   // G=16: two head groups per kv head
  testPagedAttention(DType::F32, 16, 12, 4, 32, true);    // G=3 (group of 4, one head idle)
  testPagedAttention(DType::F32, 64, 8, 2, 256, true, {300, 77}, {300, 77});   // prefill rows, causal
  testPagedAttention(DType::BF16, 128, 32, 8, 64, true, {2049}, {1});           // the benchmark decode shape
  testPagedAttention(DType::BF16, 128, 32, 8, 128, true, {2049}, {1});
  testPagedAttention(DType::BF16, 128, 16, 8, 256, true, {2049}, {1});          // the forward's split there
  // tensor-core kernel (f16/bf16, D 64/128): 3 of 8 head rows used, splits ending inside a warp step,
  // causal prefill rows
  testPagedAttention(DType::BF16, 64, 12, 4, 48, true);
  testPagedAttention(DType::F16, 64, 12, 4, 200, true);
  testPagedAttention(DType::BF16, 128, 16, 2, 64, true, {300, 77}, {300, 77});
  testPagedAttention(DType::F16, 128, 8, 1, 128, true, {129, 16, 15}, {3, 16, 1});
  for (DType t : {DType::F16, DType::BF16})
    for (int D : {64, 128})
      for (int G : {1, 4, 8}) {
        testPrefillAttention(t, D, 2 * G, 2);
        testPrefillAttention(t, D, 2 * G, 2, PrefillKernel::Wmma);
        if (G > 1) testPrefillAttention(t, D, 2 * G, 2, PrefillKernel::Mma1);
      }
  // long cached prefixes (many tiles through the cp.async ring, diagonal tiles at odd offsets), 2 kv heads
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::Mma, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::Mma1, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::MmaHeavyFirst, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::F16, 64, 2, 2, PrefillKernel::MmaHeavyFirst, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::F16, 64, 8, 2, PrefillKernel::Mma, {777, 129}, {200, 129});
  // cache blocks of 12 (not a power of two; D = 128: a thread's 8 rows straddle blocks) and 5
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::Mma, {300, 70}, {130, 70}, 12);
  testPrefillAttention(DType::BF16, 64, 4, 2, PrefillKernel::Mma, {300, 70}, {130, 70}, 12);
  testPrefillAttention(DType::F16, 128, 2, 2, PrefillKernel::Mma, {300, 70}, {130, 70}, 5);
  cuda::Cublas blas(0, nullptr, 0);
  for (DType t : kAll) {
    testMatmul(t, 37, 96, 128, false, false, &blas);
    testMatmul(t, 5, 300, 512, true, false, &blas);
    for (int M : {1, 3, 8}) testMatmul(t, M, 300, 4096, false, true, nullptr);
    testMatmul(t, 2, 77, 1024, true, true, nullptr);
  }
  for (DType t : kAll) testGemvSilu(t);
  for (DType wt : {DType::BF16, DType::F16}) {
    for (int M : {1, 4}) testMatmulMixed(wt, M, 300, 4096, true, nullptr);
    testMatmulMixed(wt, 37, 96, 1024, false, &blas);
    testMatmulMixed(wt, 130, 520, 2048, false, &blas);
    testGemvSiluMixed(wt);
  }
  for (DType t : kAll)
    for (int M : {1, 3, 8}) testGemvFused(t, t, M, 300, 1024);
  testGemvFused(DType::BF16, DType::BF16, 4, 4096, 4096);
  testGemvFused(DType::BF16, DType::BF16, 1, 1024, 3072);
  for (DType wt : {DType::BF16, DType::F16})
    for (int M : {1, 4}) testGemvFused(DType::F32, wt, M, 296, 2048);
  for (DType t : kAll)
    for (int M : {1, 3}) testGemvQkvRope(t, t, M, 16, 8, 128, 1024, false, true);   // Qwen3-0.6B
  testGemvQkvRope(DType::BF16, DType::BF16, 4, 32, 8, 128, 4096, false, false);      // Llama-3.1-8B
  testGemvQkvRope(DType::BF16, DType::BF16, 2, 14, 2, 64, 896, true, false);         // Qwen2-0.5B
  testGemvQkvRope(DType::F32, DType::F32, 8, 4, 2, 8, 64, true, true);               // tiny head_dim
  testGemvQkvRope(DType::F32, DType::F32, 2, 2, 1, 256, 256, false, true);           // D 256
  testGemvQkvRope(DType::F32, DType::BF16, 3, 16, 8, 128, 1024, false, true);        // f32 compute
  testArgmax();
  testSample();
  testTokenMask(151936);
  testTokenMask(1003);
  testKvPack();
  testConvertAndFill();
}

}  // namespace pds::test
