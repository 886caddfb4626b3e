// Host implementation of BatchDesc's grammar masks (pds/types.h): the CPU backend applies it before its
// token choice, and the CUDA kernel (native/cuda/token-mask.cu) is tested against it. Same rule as
// src/structured/apply-bitmask.ts: bit (id & 31) of word (id >> 5) clear = id rejected (-inf).
#pragma once
#include <cmath>
#include <cstdint>

namespace pds {

inline int tokenMaskWords(int vocab) { return (vocab + 31) / 32; }

// row [V] modified in place; mask [tokenMaskWords(V)].
inline void applyTokenMask(float* row, int V, const int32_t* mask) {
  const int words = tokenMaskWords(V);
  for (int w = 0; w < words; ++w) {
    const uint32_t bits = static_cast<uint32_t>(mask[w]);
    if (bits == 0xffffffffu) continue;
    const int base = w * 32, end = base + 32 < V ? base + 32 : V;
    for (int i = base; i < end; ++i)
      if (!((bits >> (i - base)) & 1u)) row[i] = -INFINITY;
  }
}

}  // namespace pds
