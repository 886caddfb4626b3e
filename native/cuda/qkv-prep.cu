// Fused attention-input prep, one warp per (token, head): bias add, Qwen3 q/k RMSNorm over head_dim,
// RoPE (NeoX rotate_half pairs (i, i + D/2); llama3 scaling is folded into invFreq by the caller),
// and the KV write of k and v into the paged cache at the token's slot.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

constexpr int kMaxPairsPerLane = 4;  // D <= 256

template <typename T>
__global__ void qkvPrepKernel(T* qkv, int nH, int nKV, int D, const T* bias, const T* qNormW, const T* kNormW,
                              float eps, const float* invFreq, const int32_t* positions, const int32_t* slots,
                              T* kCache, T* vCache) {
  pdlWait();
  pdlTrigger();
  const int t = blockIdx.x;
  const int head = blockIdx.y * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int heads = nH + 2 * nKV;
  if (head >= heads) return;
  const int half = D / 2;
  const int kind = head < nH ? 0 : head < nH + nKV ? 1 : 2;  // q, k, v
  T* row = qkv + ((size_t)t * heads + head) * D;
  const T* b = bias ? bias + (size_t)head * D : nullptr;
  float lo[kMaxPairsPerLane], hi[kMaxPairsPerLane];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < kMaxPairsPerLane; ++j) {
    const int i = lane + 32 * j;
    lo[j] = hi[j] = 0.f;
    if (i < half) {
      lo[j] = toF(row[i]); hi[j] = toF(row[i + half]);
      if (b) { lo[j] = toF(fromF<T>(lo[j] + toF(b[i]))); hi[j] = toF(fromF<T>(hi[j] + toF(b[i + half]))); }
      ss += lo[j] * lo[j] + hi[j] * hi[j];
    }
  }
  const T* nw = kind == 0 ? qNormW : kind == 1 ? kNormW : nullptr;
  if (nw) {
    const float inv = rsqrtf(warpSum(ss) / D + eps);
#pragma unroll
    for (int j = 0; j < kMaxPairsPerLane; ++j) {
      const int i = lane + 32 * j;
      if (i < half) { lo[j] = lo[j] * inv * toF(nw[i]); hi[j] = hi[j] * inv * toF(nw[i + half]); }
    }
  }
  if (kind != 2) {
    const float pos = (float)positions[t];
#pragma unroll
    for (int j = 0; j < kMaxPairsPerLane; ++j) {
      const int i = lane + 32 * j;
      if (i < half) {
        float sn, cs;
        sincosf(pos * invFreq[i], &sn, &cs);
        const float a = lo[j], c = hi[j];
        lo[j] = a * cs - c * sn;
        hi[j] = c * cs + a * sn;
      }
    }
  }
  T* dst = row;
  if (kind != 0) {
    const int slot = slots[t];
    if (slot < 0) return;
    const int kvh = head - nH - (kind == 2 ? nKV : 0);
    dst = (kind == 1 ? kCache : vCache) + ((size_t)slot * nKV + kvh) * D;
  }
#pragma unroll
  for (int j = 0; j < kMaxPairsPerLane; ++j) {
    const int i = lane + 32 * j;
    if (i < half) { dst[i] = fromF<T>(lo[j]); dst[i + half] = fromF<T>(hi[j]); }
  }
}

void launchQkvPrep(DType t, void* qkv, int T, int nH, int nKV, int D, const void* bias, const void* qNormW,
                   const void* kNormW, float eps, const float* invFreq, const int32_t* positions,
                   const int32_t* slots, void* kCache, void* vCache, cudaStream_t s) {
  if (T <= 0) return;
  if (D % 2 || D > 2 * 32 * kMaxPairsPerLane) throw std::runtime_error("CUDA backend: qkv prep: head_dim must be even and <= 256");
  const int warps = 4, heads = nH + 2 * nKV;
  dim3 grid(T, (heads + warps - 1) / warps);
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    launchPdl(qkvPrepKernel<E>, grid, warps * 32, 0, s, (E*)qkv, nH, nKV, D, (const E*)bias, (const E*)qNormW,
                                                 (const E*)kNormW, eps, invFreq, positions, slots, (E*)kCache,
                                                 (E*)vCache);
  });
  checkLaunch("qkv_prep");
}

}  // namespace pds::cuda
