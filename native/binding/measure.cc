// Measurement probes and CPU feature list (benchmark ratios): thin wrappers over cpu/bandwidth.cc and the
// matmul micro-kernel.
#include <memory>

#include "../cpu/kernels.h"
#include "args.h"
#include "register.h"

namespace pds::binding {
namespace {

// A pool of the requested size (0 = the shared default pool of all cores).
template <class F>
double withPool(int threads, F&& f) {
  if (threads <= 0) return f(cpu::defaultPool());
  cpu::ThreadPool pool(threads);
  return f(pool);
}

Napi::Value MeasureMemcpy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t bytes = intArg(env, info[0], "measureMemcpy: bytes", 4096, int64_t(1) << 34);
  int iters = static_cast<int>(intArg(env, info[1], "measureMemcpy: iters", 1, 1000));
  return Napi::Number::New(env, guarded(env, [&] { return cpu::measureMemcpyGBs(bytes, iters); }));
}

Napi::Value MeasureRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t bytes = intArg(env, info[0], "measureReadBandwidth: bytes", 4096, int64_t(1) << 34);
  int iters = static_cast<int>(intArg(env, info[1], "measureReadBandwidth: iters", 1, 1000));
  int threads = static_cast<int>(intArg(env, info[2], "measureReadBandwidth: threads", 0, 1024));
  return Napi::Number::New(env, guarded(env, [&] {
                             return withPool(threads, [&](cpu::ThreadPool& p) { return cpu::measureReadGBs(p, bytes, iters); });
                           }));
}

Napi::Value MeasureMatmulPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int threads = static_cast<int>(intArg(env, info[0], "measureMatmulPeak: threads", 0, 1024));
  return Napi::Number::New(env, guarded(env, [&] {
                             return withPool(threads, [&](cpu::ThreadPool& p) { return cpu::measureMatmulPeakGflops(p); });
                           }));
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  __builtin_cpu_init();
  const char* names[] = {"sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                         "avx512vnni", "avx512bf16"};
  const bool has[] = {
      __builtin_cpu_supports("sse4.2") != 0,   __builtin_cpu_supports("avx") != 0,
      __builtin_cpu_supports("avx2") != 0,     __builtin_cpu_supports("fma") != 0,
      __builtin_cpu_supports("f16c") != 0,     __builtin_cpu_supports("avx512f") != 0,
      __builtin_cpu_supports("avx512bw") != 0, __builtin_cpu_supports("avx512vl") != 0,
      __builtin_cpu_supports("avx512dq") != 0, __builtin_cpu_supports("avx512vnni") != 0,
      __builtin_cpu_supports("avx512bf16") != 0};
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (has[i]) out.Set(k++, Napi::String::New(env, names[i]));
  return out;
}

}  // namespace

void registerMeasure(Napi::Env env, Napi::Object exports) {
  exports.Set("measureMemcpy", Napi::Function::New(env, MeasureMemcpy, "measureMemcpy"));
  exports.Set("measureReadBandwidth", Napi::Function::New(env, MeasureRead, "measureReadBandwidth"));
  exports.Set("measureMatmulPeak", Napi::Function::New(env, MeasureMatmulPeak, "measureMatmulPeak"));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures, "cpuFeatures"));
}

}  // namespace pds::binding
