// RMSNorm, computed in f32 (double accumulation of the sum of squares).
#include "kernels.h"

#include <cmath>

namespace pds::cpu {

void rmsnorm(const float* x, int ldx, const float* w, float* y, int ldy, int rows, int dim, float eps) {
  for (int r = 0; r < rows; r++) {
    const float* xr = x + static_cast<size_t>(r) * ldx;
    float* yr = y + static_cast<size_t>(r) * ldy;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= dim; i += 8)
      for (int j = 0; j < 8; j++) acc[j] += xr[i + j] * xr[i + j];
    double ss = 0;
    for (int j = 0; j < 8; j++) ss += acc[j];
    for (; i < dim; i++) ss += static_cast<double>(xr[i]) * xr[i];
    float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    for (int d = 0; d < dim; d++) yr[d] = xr[d] * inv * w[d];
  }
}

}  // namespace pds::cpu
