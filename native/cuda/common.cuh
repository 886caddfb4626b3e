// Shared device helpers of the CUDA backend: dtype traits, 16-byte vector access, error checks.
// Every kernel works on T in {float, __half, __nv_bfloat16} with float accumulation.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "pds/types.h"

namespace pds::cuda {

// Throws std::runtime_error "<what>: <cuda error text>" when a runtime call fails.
inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA backend: ") + what + ": " + cudaGetErrorString(e) + " (" +
                             cudaGetErrorName(e) + ")");
  }
}
// After a kernel launch: reports launch-configuration errors (not asynchronous faults).
inline void checkLaunch(const char* kernel) { check(cudaGetLastError(), kernel); }

__device__ __forceinline__ float toF(float x) { return x; }
__device__ __forceinline__ float toF(__half x) { return __half2float(x); }
__device__ __forceinline__ float toF(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T fromF(float x);
template <> __device__ __forceinline__ float fromF<float>(float x) { return x; }
template <> __device__ __forceinline__ __half fromF<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 fromF<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// 16 bytes of T: 4 floats or 8 halves.
template <typename T> struct Vec {
  static constexpr int N = 16 / sizeof(T);
  uint4 raw;
  __device__ __forceinline__ void load(const T* p) { raw = *reinterpret_cast<const uint4*>(p); }
  __device__ __forceinline__ void store(T* p) const { *reinterpret_cast<uint4*>(p) = raw; }
  __device__ __forceinline__ float get(int i) const { return toF(reinterpret_cast<const T*>(&raw)[i]); }
  __device__ __forceinline__ void set(int i, float v) { reinterpret_cast<T*>(&raw)[i] = fromF<T>(v); }
};

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Dispatches a functor templated on the element type for a runtime DType.
template <typename F> inline void dispatchDType(DType t, F&& f) {
  switch (t) {
    case DType::F32: f(float{}); break;
    case DType::F16: f(__half{}); break;
    case DType::BF16: f(__nv_bfloat16{}); break;
    default: throw std::runtime_error("CUDA backend: unsupported dtype");
  }
}

// Programmatic dependent launch (Hopper): a kernel launched with launchPdl may be scheduled while the previous
// kernel on the stream still runs; it must call pdlWait() before touching ANY global memory (inputs it reads
// and buffers it overwrites alike), which waits for the previous grid to complete and its writes to be
// visible. With pdlWait() first thing, stream order semantics are unchanged; what overlaps is the launch and
// scheduling latency of the next kernel (the dominant cost of small decode kernels). pdlTrigger() lets the
// next kernel launch before this one finishes. Without the launch attribute both are no-ops.
__device__ __forceinline__ void pdlWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdlTrigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}
// PDSERVE_CUDA_PDL=0 turns the attribute off (for measurements); on by default.
bool pdlEnabled();
// kernel<<<grid, block, smem, s>>>(args...) with the programmatic-serialization attribute when enabled.
template <typename... KArgs, typename... Args>
inline void launchPdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid; cfg.blockDim = block; cfg.dynamicSmemBytes = smem; cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdlEnabled() ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), "kernel launch");
}

inline const char* dtypeStr(DType t) { return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16"; }

}  // namespace pds::cuda
