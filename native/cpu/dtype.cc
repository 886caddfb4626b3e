// DType names and array conversions.
#include "dtype.h"

#include <stdexcept>
#include <vector>

namespace pds {

DType parseDType(const std::string& s) {
  if (s == "f32" || s == "float32") return DType::F32;
  if (s == "f16" || s == "float16") return DType::F16;
  if (s == "bf16" || s == "bfloat16") return DType::BF16;
  throw std::invalid_argument("unknown dtype '" + s + "' (expected f32, f16 or bf16)");
}

const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
  }
  return "?";
}

namespace cpu {

void toF32(const void* src, DType t, float* dst, size_t n) {
  if (t == DType::F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  const uint16_t* s = static_cast<const uint16_t*>(src);
  size_t i = 0;
  if (t == DType::BF16) {
    for (; i + 8 <= n; i += 8) {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
      __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
    }
    for (; i < n; i++) dst[i] = bf16ToF32(s[i]);
  } else {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    for (; i < n; i++) dst[i] = f16ToF32(s[i]);
  }
}

void fromF32(const float* src, DType t, void* dst, size_t n) {
  if (t == DType::F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  uint16_t* d = static_cast<uint16_t*>(dst);
  size_t i = 0;
  if (t == DType::BF16) {
    // Round-to-nearest-even on the bit pattern, NaN kept quiet (same as f32ToBf16), 8 at a time.
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), absMask = _mm256_set1_epi32(0x7fffffff),
                  inf = _mm256_set1_epi32(0x7f800000), quiet = _mm256_set1_epi32(0x40);
    for (; i + 8 <= n; i += 8) {
      __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i));
      __m256i hi = _mm256_srli_epi32(u, 16);
      __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_and_si256(hi, one), bias)), 16);
      __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absMask), inf);
      r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, quiet), nan);
      __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xD8);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++) d[i] = f32ToBf16(src[i]);
  } else {
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = f32ToF16(src[i]);
  }
}

void convert(const void* src, DType srcT, void* dst, DType dstT, size_t n) {
  if (srcT == dstT) {
    std::memcpy(dst, src, n * dtypeSize(srcT));
    return;
  }
  if (dstT == DType::F32) return toF32(src, srcT, static_cast<float*>(dst), n);
  if (srcT == DType::F32) return fromF32(static_cast<const float*>(src), dstT, dst, n);
  constexpr size_t kChunk = 4096;
  float tmp[kChunk];
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  for (size_t i = 0; i < n; i += kChunk) {
    size_t c = n - i < kChunk ? n - i : kChunk;
    toF32(s + i * 2, srcT, tmp, c);
    fromF32(tmp, dstT, d + i * 2, c);
  }
}

}  // namespace cpu
}  // namespace pds
