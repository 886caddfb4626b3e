// Scalar dtype conversions (bf16/f16 <-> f32) and whole-array conversion. Plain C++, no Node-API.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "pds/types.h"

namespace pds::cpu {

inline float bf16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Round-to-nearest-even; NaN stays NaN.
inline uint16_t f32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float f16ToF32(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t f32ToF16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

// dst[i] = float(src[i]) for n elements of dtype t.
void toF32(const void* src, DType t, float* dst, size_t n);
// dst[i] = t(src[i]) for n elements.
void fromF32(const float* src, DType t, void* dst, size_t n);
// Converts n elements between any two dtypes (memcpy when equal).
void convert(const void* src, DType srcT, void* dst, DType dstT, size_t n);

}  // namespace pds::cpu
