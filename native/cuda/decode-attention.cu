// Warp-per-split paged attention for f16/bf16 with head_dim 64 or 128 (the decode fast path behind
// launchPagedAttention). A warp owns one (token, kv head, group of <= 8 query heads, split): lanes take
// one key each (the whole key row in registers, 16-byte loads), the chunk's softmax runs on shuffles,
// and for P V each lane owns D/32 output dims, reading value rows coalesced. No block barriers.
// Output: the same unnormalized partials (o, m, l) per split as paged-attention.cu, merged by
// attention-combine.cu.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

constexpr int kWarps = 4, kG = 8;

template <typename T, int D>
__global__ void __launch_bounds__(kWarps * 32) decodeAttentionKernel(PagedAttnArgs a) {
  constexpr int VPR = D / 8;   // 16-byte vectors per key row
  constexpr int DPL = D / 32;  // output dims per lane
  __shared__ float qs[kWarps][kG][D];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int G = a.nH / a.nKV, chunks = (G + kG - 1) / kG;
  long task = (long)blockIdx.x * kWarps + warp;
  const int split = (int)(task % a.maxSplits);
  task /= a.maxSplits;
  const int hc = (int)(task % (a.nKV * chunks));
  const int t = (int)(task / (a.nKV * chunks));
  if (t >= a.T) return;
  const int kvh = hc / chunks, g0 = (hc % chunks) * kG, gN = min(kG, G - g0);
  const int ctx = a.tokenCtx[t], start = split * a.splitSize;
  if (start >= ctx) return;
  const int end = min(ctx, start + a.splitSize);
  const int headBase = kvh * G + g0;
  const T* qrow = (const T*)a.q + (size_t)t * a.qStride + (size_t)headBase * D;
  for (int i = lane; i < gN * D; i += 32) qs[warp][i / D][i % D] = toF(qrow[i]) * a.scale;
  __syncwarp();
  const int32_t* bt = a.blockTables + (size_t)a.tokenSeq[t] * a.btStride;
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;

  float mRun[kG], lRun[kG], acc[kG][DPL];
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    mRun[g] = -INFINITY; lRun[g] = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[g][i] = 0.f;
  }
  for (int c0 = start; c0 < end; c0 += 32) {
    const int j = c0 + lane;
    const bool valid = j < end;
    size_t rowOff = 0;
    if (valid) rowOff = (((size_t)bt[j / a.blockSize] * a.blockSize + j % a.blockSize) * a.nKV + kvh) * D;
    uint4 kv[VPR];
#pragma unroll
    for (int v = 0; v < VPR; ++v) kv[v] = valid ? *reinterpret_cast<const uint4*>(kc + rowOff + v * 8) : make_uint4(0, 0, 0, 0);
    float s[kG];
#pragma unroll
    for (int g = 0; g < kG; ++g) s[g] = 0.f;
#pragma unroll
    for (int v = 0; v < VPR; ++v) {
      const T* e = reinterpret_cast<const T*>(&kv[v]);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float kf = toF(e[i]);
#pragma unroll
        for (int g = 0; g < kG; ++g) if (g < gN) s[g] += kf * qs[warp][g][v * 8 + i];
      }
    }
    float p[kG];
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      if (g >= gN) { p[g] = 0.f; continue; }
      const float x = valid ? s[g] : -INFINITY;
      const float mNew = fmaxf(mRun[g], warpMax(x));
      p[g] = valid ? __expf(x - mNew) : 0.f;
      const float alpha = __expf(mRun[g] - mNew);  // mRun = -inf at first: 0
      lRun[g] = lRun[g] * alpha + warpSum(p[g]);
#pragma unroll
      for (int i = 0; i < DPL; ++i) acc[g][i] *= alpha;
      mRun[g] = mNew;
    }
    const int n = min(32, end - c0);
#pragma unroll 4
    for (int kk = 0; kk < n; ++kk) {
      const size_t off = __shfl_sync(0xffffffffu, rowOff, kk);
      float vv[DPL];
      if constexpr (DPL == 4) {
        const uint2 raw = *reinterpret_cast<const uint2*>(vc + off + lane * 4);
        const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int i = 0; i < 4; ++i) vv[i] = toF(e[i]);
      } else {
        const uint32_t raw = *reinterpret_cast<const uint32_t*>(vc + off + lane * 2);
        const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int i = 0; i < 2; ++i) vv[i] = toF(e[i]);
      }
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        if (g < gN) {
          const float pk = __shfl_sync(0xffffffffu, p[g], kk);
#pragma unroll
          for (int i = 0; i < DPL; ++i) acc[g][i] += pk * vv[i];
        }
      }
    }
  }
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    if (g >= gN) continue;
    const size_t th = (size_t)t * a.nH + headBase + g;
    float* o = a.wsO + (th * a.maxSplits + split) * D;
#pragma unroll
    for (int i = 0; i < DPL; ++i) o[lane * DPL + i] = acc[g][i];
    if (lane == 0) {
      a.wsML[(th * a.maxSplits + split) * 2] = mRun[g];
      a.wsML[(th * a.maxSplits + split) * 2 + 1] = lRun[g];
    }
  }
}

bool decodeAttentionSupported(DType t, int D, int splitSize) {
  return t != DType::F32 && (D == 64 || D == 128) && splitSize % 32 == 0;
}

void launchDecodeAttention(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  const int G = a.nH / a.nKV;
  const long tasks = (long)a.T * a.nKV * ((G + kG - 1) / kG) * a.maxSplits;
  const unsigned blocks = (unsigned)((tasks + kWarps - 1) / kWarps);
  if (t == DType::F16) {
    if (a.D == 64) decodeAttentionKernel<__half, 64><<<blocks, kWarps * 32, 0, s>>>(a);
    else decodeAttentionKernel<__half, 128><<<blocks, kWarps * 32, 0, s>>>(a);
  } else {
    if (a.D == 64) decodeAttentionKernel<__nv_bfloat16, 64><<<blocks, kWarps * 32, 0, s>>>(a);
    else decodeAttentionKernel<__nv_bfloat16, 128><<<blocks, kWarps * 32, 0, s>>>(a);
  }
  checkLaunch("decode_attention");
}

}  // namespace pds::cuda
