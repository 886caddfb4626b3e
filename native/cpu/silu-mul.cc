// SiLU-and-mul: out = silu(gate) * up = gate / (1 + exp(-gate)) * up.
#include "kernels.h"
#include "simd.h"

namespace pds::cpu {

void siluMul(const float* gu, int rows, int I, float* out) {
  for (int r = 0; r < rows; r++) {
    const float* g = gu + static_cast<size_t>(r) * 2 * I;
    const float* u = g + I;
    float* o = out + static_cast<size_t>(r) * I;
    int i = 0;
    for (; i + VW <= I; i += VW) {
      vf gv = loadu(g + i);
      storeu(o + i, gv / (1.0f + vexp(-gv)) * loadu(u + i));
    }
    for (; i < I; i++) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

}  // namespace pds::cpu
