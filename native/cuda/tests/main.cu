// CUDA backend test harness. Usage:
//   cuda-tests [--kernels] [--models FIXTURES_DIR --so build/pdserve_cuda.so] [--bench] [--bench-quick]
//   cuda-tests --expect-no-gpu --so build/pdserve_cuda.so   (on a machine without a GPU: the factory must
//                                                          fail with a clear message, not crash)
// Exit status: 0 when every check passed, 1 otherwise, 3 when no GPU is usable.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "harness.h"
#include "pds/backend.h"

int main(int argc, char** argv) {
  using namespace pds::test;
  bool kernels = false, bench = false, benchFull = true, expectNoGpu = false;
  std::string fixtures, so = "build/pdserve_cuda.so";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--kernels") kernels = true;
    else if (a == "--models" && i + 1 < argc) fixtures = argv[++i];
    else if (a == "--so" && i + 1 < argc) so = argv[++i];
    else if (a == "--bench") bench = true;
    else if (a == "--bench-quick") { bench = true; benchFull = false; }
    else if (a == "--expect-no-gpu") expectNoGpu = true;
    else if (a == "--dump" && i + 3 < argc) {  // --dump MODEL_DIR CASE OUT.bin  (f32)
      const std::string dir = argv[i + 1], out = argv[i + 3];
      const int c = std::atoi(argv[i + 2]);
      pds::test::dumpLogits(dir, c, pds::DType::F32, out);
      return 0;
    }
    else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
  }
  if (expectNoGpu) {
    void* lib = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) { std::printf("FAIL dlopen %s: %s\n", so.c_str(), dlerror()); return 1; }
    auto f = (pds::Backend * (*)(const pds::ModelSpec*, const pds::BackendOptions*, char*, size_t))dlsym(lib, "pds_create_cuda_backend");
    pds::ModelSpec s; s.numLayers = 1; s.hiddenSize = 64; s.intermediateSize = 128; s.numHeads = 8; s.numKvHeads = 4;
    s.headDim = 8; s.vocabSize = 32;
    pds::BackendOptions o; o.device = "cuda";
    char err[512] = {0};
    pds::Backend* b = f ? f(&s, &o, err, sizeof err) : nullptr;
    const bool ok = f && !b && std::strlen(err) > 0;
    std::printf("%s factory without a GPU -> error: %s\n", ok ? "PASS" : "FAIL", err);
    return ok ? 0 : 1;
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) { std::printf("no usable CUDA device\n"); return 3; }
  if (kernels) runKernelTests(12345);
  if (!fixtures.empty()) runModelTests(fixtures, so);
  auto& r = results();
  std::printf("\nchecks: %d passed, %d failed\n", r.pass, r.fail);
  for (auto& f : r.failures) std::printf("  FAILED %s\n", f.c_str());
  if (bench) runBenchmarks(benchFull);
  return r.fail ? 1 : 0;
}
