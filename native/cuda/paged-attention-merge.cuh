// Device side shared by the fused paged-attention kernels (paged-attention-fused.cu, paged-attention-mma.cu):
// the merge of a block's warps and of a token's splits, and the tensor-core variant's launcher.
#pragma once
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

// Tensor-core variant (paged-attention-mma.cu): f16/bf16 KV, head_dim 64 or 128; kMmaWarps warps per block,
// kMmaKeys keys per warp step. Same contract as launchPagedAttentionFused (arguments checked there).
constexpr int kMmaWarps = 8, kMmaKeys = 16;
void launchPagedAttentionMma(DType t, const PagedAttnArgs& a, cudaStream_t s);

// e^(m - M) for merging a partial with max m into max M >= m; 1 when equal (also both -inf: empty).
__device__ __forceinline__ float rescale(float m, float M) { return m == M ? 1.f : __expf(m - M); }

// Shared end of both fused kernels. On entry smem holds each warp's partial result of this split,
// wO [kWarps][GB][D + 4], wM [kWarps][GB] (max), wL [kWarps][GB] (sum), for the gN query heads th0.. of
// token blockIdx.z. Merges the warps; writes out directly when the token has one split (ns == 1), else
// this split's partial to wsO/wsML, and the last split to arrive merges all ns of them into out.
template <typename T, int kWarps>
__device__ __forceinline__ void finishSplit(const PagedAttnArgs& a, float* smem, int GB, int gN, size_t th0, int split,
                                            int ns) {
  constexpr int kThreads = kWarps * 32;
  const int D = a.D, ldO = D + 4, t = blockIdx.z, tid = threadIdx.x;
  const float* wO = smem;
  const float* wM = wO + kWarps * GB * ldO;
  const float* wL = wM + kWarps * GB;
  __syncthreads();
  T* out = (T*)a.out + th0 * D;
  for (int idx = tid; idx < gN * D; idx += kThreads) {
    const int g = idx / D, d = idx % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, wM[w * GB + g]);
    float o = 0.f, L = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float c = rescale(wM[w * GB + g], M);
      o += c * wO[(w * GB + g) * ldO + d];
      L += c * wL[w * GB + g];
    }
    if (ns == 1) {
      out[idx] = fromF<T>(o / L);
    } else {
      const size_t r = (th0 + g) * a.maxSplits + split;
      a.wsO[r * D + d] = o;
      if (d == 0) { a.wsML[2 * r] = M; a.wsML[2 * r + 1] = L; }
    }
  }
  if (ns == 1) return;

  // last split of this (token, head group) to finish merges them all
  __shared__ int lastS;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    int* ctr = a.counters + (size_t)t * gridDim.y + blockIdx.y;
    const int prev = atomicAdd(ctr, 1);
    lastS = prev == ns - 1;
    if (lastS) *ctr = 0;
  }
  __syncthreads();
  if (!lastS) return;
  __threadfence();
  // Columns c = (g, 4 elements of D); P threads per column share the splits when there are few columns.
  // Each thread merges its splits online, kB splits' loads (o, max, sum) issued together per round trip.
  constexpr int kB = 16;
  const int D4 = D / 4, C = gN * D4, CP = min(C, kThreads), P = kThreads / CP;
  float4* red = reinterpret_cast<float4*>(smem);              // [kThreads]
  float2* redML = reinterpret_cast<float2*>(red + kThreads);  // [kThreads]
  for (int c0 = 0; c0 < C; c0 += CP) {
    const int c = c0 + tid % CP, r = tid / CP;
    const bool act = r < P && c < C;
    float M = -INFINITY, L = 0.f;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (act) {
      const int g = c / D4;
      const float4* o = reinterpret_cast<const float4*>(a.wsO + (th0 + g) * a.maxSplits * D) + c % D4;
      const float2* ml = reinterpret_cast<const float2*>(a.wsML) + (th0 + g) * a.maxSplits;
      for (int s0 = r; s0 < ns; s0 += kB * P) {
        float4 x[kB];
        float2 y[kB];
#pragma unroll
        for (int k = 0; k < kB; ++k) {
          const int s2 = min(s0 + k * P, ns - 1);
          x[k] = __ldcg(o + (size_t)s2 * D4);
          y[k] = __ldcg(ml + s2);
        }
        float Mb = M;
#pragma unroll
        for (int k = 0; k < kB; ++k) if (s0 + k * P < ns) Mb = fmaxf(Mb, y[k].x);
        const float cc = rescale(M, Mb);
        M = Mb; L *= cc;
        acc.x *= cc; acc.y *= cc; acc.z *= cc; acc.w *= cc;
#pragma unroll
        for (int k = 0; k < kB; ++k) {
          if (s0 + k * P < ns) {
            const float e = __expf(y[k].x - Mb);
            L += e * y[k].y;
            acc.x += e * x[k].x; acc.y += e * x[k].y; acc.z += e * x[k].z; acc.w += e * x[k].w;
          }
        }
      }
    }
    if (P > 1) {  // then C < kThreads: a single pass of this loop, every thread here
      red[tid] = acc;
      redML[tid] = make_float2(M, L);
      __syncthreads();
      if (r == 0 && act) {
        for (int r2 = 1; r2 < P; ++r2) {
          const float4 xo = red[r2 * CP + c];
          const float2 yo = redML[r2 * CP + c];
          const float Mn = fmaxf(M, yo.x), ca = rescale(M, Mn), cb = rescale(yo.x, Mn);
          M = Mn; L = L * ca + yo.y * cb;
          acc.x = acc.x * ca + xo.x * cb; acc.y = acc.y * ca + xo.y * cb;
          acc.z = acc.z * ca + xo.z * cb; acc.w = acc.w * ca + xo.w * cb;
        }
      }
    }
    if (r == 0 && act) {
      const float il = 1.f / L;
      T* dst = out + (size_t)c * 4;  // c * 4 = g * D + 4 * (c % D4)
      dst[0] = fromF<T>(acc.x * il); dst[1] = fromF<T>(acc.y * il);
      dst[2] = fromF<T>(acc.z * il); dst[3] = fromF<T>(acc.w * il);
    }
  }
}

}  // namespace pds::cuda
