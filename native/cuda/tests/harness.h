// Test harness plumbing: CUDA checks, host-side dtype rounding, random data, error metrics, result log.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "pds/types.h"

namespace pds::test {

#define TCHECK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
  std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorName(e_), __FILE__, __LINE__, cudaGetErrorString(e_)); \
  std::exit(2); } } while (0)

struct Results {
  int pass = 0, fail = 0;
  std::vector<std::string> failures;
  void record(bool ok, const std::string& name, const std::string& detail) {
    std::printf("%s %s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
    std::fflush(stdout);
    if (ok) ++pass; else { ++fail; failures.push_back(name + " " + detail); }
  }
};
Results& results();

// Host values rounded through dtype t (so the CPU reference sees the device's inputs).
float roundTo(DType t, float v);
// Host float array -> device array of dtype t (rounded), and back.
void* toDevice(DType t, const std::vector<float>& v);
std::vector<float> fromDevice(DType t, const void* d, size_t n);
std::vector<float> randomVec(std::mt19937& rng, size_t n, float lo, float hi, DType roundAs);
// ||a - b|| / ||b|| over all elements (NaN -> inf).
double relErr(const std::vector<float>& a, const std::vector<double>& b);
double tolFor(DType t);  // 1e-5 f32, 3e-3 f16, 1e-2 bf16 (relative L2)

void runKernelTests(uint64_t seed);
void runModelTests(const std::string& fixturesDir, const std::string& soPath);
void runBenchmarks(bool full);
void dumpLogits(const std::string& dir, int caseIdx, DType dt, const std::string& outPath);

}  // namespace pds::test
