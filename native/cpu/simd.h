// Width-generic SIMD helpers on GCC vector extensions. Included by *-impl.h files that are compiled twice:
// once for x86-64-v3 (VW = 8 floats, AVX2) and once in *.avx512.cc (VW = 16 floats, AVX-512).
// Everything here is static inline, so the two compilations never share a symbol.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cmath>
#include <cstring>

#include "pds/types.h"

namespace {

#if defined(__AVX512F__)
constexpr int VW = 16;
#else
constexpr int VW = 8;
#endif

typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));
typedef uint16_t vh __attribute__((vector_size(VW * 2), aligned(2)));
typedef uint32_t vu __attribute__((vector_size(VW * 4)));

template <pds::DType T>
struct Ld;
template <>
struct Ld<pds::DType::F32> {
  typedef float E;
  static inline vf load(const E* p) { return *reinterpret_cast<const vfu*>(p); }
  static inline float one(const E* p) { return *p; }
};
template <>
struct Ld<pds::DType::BF16> {
  typedef uint16_t E;
  static inline vf load(const E* p) {
#if defined(__AVX512F__)
    __m512i u = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16);
#else
    __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16);
#endif
    return (vf)(u);
  }
  static inline float one(const E* p) {
    uint32_t u = static_cast<uint32_t>(*p) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};
template <>
struct Ld<pds::DType::F16> {
  typedef uint16_t E;
  static inline vf load(const E* p) {
#if defined(__AVX512F__)
    __m512 r = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#else
    __m256 r = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#endif
    return (vf)(r);
  }
  static inline float one(const E* p) { return _cvtsh_ss(*p); }
};

static inline vf loadu(const float* p) { return *reinterpret_cast<const vfu*>(p); }
static inline void storeu(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
static inline float hsum(vf v) {
#if defined(__AVX512F__)
  return _mm512_reduce_add_ps((__m512)v);
#else
  __m128 a = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_movehdup_ps(a));
  return _mm_cvtss_f32(a);
#endif
}

// exp(x) for x <= 0-ish inputs (clamped to [-87, 88]); ~1 ulp-level polynomial (Cephes expf).
static inline vf vexp(vf x) {
  const vf hi = vf{} + 88.3762626647949f, lo = vf{} - 87.3365447504f;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  vf fx = x * 1.44269504088896341f + 0.5f;
#if defined(__AVX512F__)
  __m512 fl = _mm512_roundscale_ps((__m512)(fx), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
#else
  __m256 fl = _mm256_floor_ps((__m256)(fx));
#endif
  fx = (vf)(fl);
  x = x - fx * 0.693359375f - fx * -2.12194440e-4f;
  vf z = x * x;
  vf y = vf{} + 1.9875691500E-4f;
  y = y * x + 1.3981999507E-3f;
  y = y * x + 8.3334519073E-3f;
  y = y * x + 4.1665795894E-2f;
  y = y * x + 1.6666665459E-1f;
  y = y * x + 5.0000001201E-1f;
  y = y * z + x + 1.0f;
  typedef int32_t vi __attribute__((vector_size(VW * 4)));
  vi n = __builtin_convertvector(fx, vi);
  vi e = (n + 127) << 23;
  return y * (vf)(e);
}

}  // namespace
