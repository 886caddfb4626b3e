// Shared helpers of the CUDA test harness (see harness.h).
#include "harness.h"

#include <cstring>

namespace pds::test {

Results& results() { static Results r; return r; }

float roundTo(DType t, float v) {
  if (t == DType::F16) return __half2float(__float2half_rn(v));
  if (t == DType::BF16) return __bfloat162float(__float2bfloat16_rn(v));
  return v;
}

void* toDevice(DType t, const std::vector<float>& v) {
  const size_t e = dtypeSize(t);
  std::vector<uint8_t> raw(v.size() * e);
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::F32) std::memcpy(&raw[i * 4], &v[i], 4);
    else if (t == DType::F16) { __half h = __float2half_rn(v[i]); std::memcpy(&raw[i * 2], &h, 2); }
    else { __nv_bfloat16 h = __float2bfloat16_rn(v[i]); std::memcpy(&raw[i * 2], &h, 2); }
  }
  void* d = nullptr;
  TCHECK(cudaMalloc(&d, std::max<size_t>(raw.size(), 16)));
  TCHECK(cudaMemcpy(d, raw.data(), raw.size(), cudaMemcpyHostToDevice));
  return d;
}

std::vector<float> fromDevice(DType t, const void* d, size_t n) {
  const size_t e = dtypeSize(t);
  std::vector<uint8_t> raw(n * e);
  TCHECK(cudaMemcpy(raw.data(), d, raw.size(), cudaMemcpyDeviceToHost));
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    if (t == DType::F32) std::memcpy(&v[i], &raw[i * 4], 4);
    else if (t == DType::F16) { __half h; std::memcpy(&h, &raw[i * 2], 2); v[i] = __half2float(h); }
    else { __nv_bfloat16 h; std::memcpy(&h, &raw[i * 2], 2); v[i] = __bfloat162float(h); }
  }
  return v;
}

std::vector<float> randomVec(std::mt19937& rng, size_t n, float lo, float hi, DType roundAs) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = roundTo(roundAs, u(rng));
  return v;
}

double relErr(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

double tolFor(DType t) { return t == DType::F32 ? 1e-5 : t == DType::F16 ? 3e-3 : 1e-2; }

}  // namespace pds::test
