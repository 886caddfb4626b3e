// Rotary position embedding, Hugging Face "rotate_half" (NeoX) layout, default or llama3 frequencies.
#include <cmath>
#include <vector>

#include "dtype.h"
#include "kernels.h"

namespace pds::cpu {

void llama3Scale(const ModelSpec& spec, float* invFreq);

void ropeInvFreq(const ModelSpec& spec, float* invFreq) {
  const int half = spec.headDim / 2;
  for (int i = 0; i < half; i++) {
    // HF: 1 / base ** (arange(0, dim, 2) / dim), in float32.
    float expo = static_cast<float>(2 * i) / static_cast<float>(spec.headDim);
    invFreq[i] = 1.0f / std::pow(spec.ropeTheta, expo);
  }
  if (spec.ropeType == RopeType::Llama3) llama3Scale(spec, invFreq);
  // Round through the dtype HF keeps the buffer in (after scaling, as the buffer is cast after init).
  if (spec.ropeFreqDtype != DType::F32) {
    std::vector<uint16_t> tmp(half);
    fromF32(invFreq, spec.ropeFreqDtype, tmp.data(), half);
    toF32(tmp.data(), spec.ropeFreqDtype, invFreq, half);
  }
}

// HF _compute_llama3_parameters.
void llama3Scale(const ModelSpec& spec, float* invFreq) {
  const int half = spec.headDim / 2;
  const double factor = spec.ropeFactor, lowF = spec.ropeLowFreqFactor, highF = spec.ropeHighFreqFactor;
  const double oldCtx = spec.ropeOriginalMaxPos;
  const double lowWavelen = oldCtx / lowF, highWavelen = oldCtx / highF;
  for (int i = 0; i < half; i++) {
    double f = invFreq[i];
    double wavelen = 2.0 * M_PI / f;
    double out;
    if (wavelen > lowWavelen) {
      out = f / factor;
    } else if (wavelen < highWavelen) {
      out = f;
    } else {
      double smooth = (oldCtx / wavelen - lowF) / (highF - lowF);
      out = (1.0 - smooth) * f / factor + smooth * f;
    }
    invFreq[i] = static_cast<float>(out);
  }
}

void ropeTable(const int32_t* positions, int rows, const float* invFreq, int half, float* cs) {
  for (int r = 0; r < rows; r++) {
    const float p = static_cast<float>(positions[r]);
    float* c = cs + static_cast<size_t>(r) * 2 * half;
    for (int i = 0; i < half; i++) {
      float ang = p * invFreq[i];  // float32 product, as HF computes freqs
      c[i] = std::cos(ang);
      c[half + i] = std::sin(ang);
    }
  }
}

void ropeApply(float* x, int ldx, int rows, int heads, int headDim, const float* cs) {
  const int half = headDim / 2;
  for (int r = 0; r < rows; r++) {
    const float* c = cs + static_cast<size_t>(r) * 2 * half;
    const float* s = c + half;
    float* xr = x + static_cast<size_t>(r) * ldx;
    for (int h = 0; h < heads; h++) {
      float* v = xr + static_cast<size_t>(h) * headDim;
      for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void rope(float* x, int ldx, int rows, int heads, int headDim, const int32_t* positions, const float* invFreq) {
  std::vector<float> cs(static_cast<size_t>(rows) * headDim);
  ropeTable(positions, rows, invFreq, headDim / 2, cs.data());
  ropeApply(x, ldx, rows, heads, headDim, cs.data());
}

}  // namespace pds::cpu
