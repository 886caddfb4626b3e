// Decode attention input in one launch (T <= 8 tokens): the input RMSNorm (prologue), the qkv GEMV, bias,
// Qwen3 q/k RMSNorm, RoPE and the KV-cache write -- what launchGemvNorm + launchQkvPrep do in two.
// Grid: one cluster of C blocks per head (q heads, then k, then v); block c of a head owns its RoPE pairs
// [c * P, (c + 1) * P) (P = ceil(D / 2 / C)); each warp computes both rows of a pair (i, i + D/2) for every
// token, so RoPE needs nothing from other warps. The q/k norm needs the head's sum of squares over all D
// outputs: each block reduces its pairs' part, and the cluster's blocks read each other's parts through
// distributed shared memory (summed in rank order: every block gets the same value). Rounding as
// gemv.cu + qkv-prep.cu: GEMV outputs and the bias sum rounded to TX, norm and RoPE in f32, one rounding
// at the store. q goes back into qkv [T, heads * D] (attention reads it there); k and v go only to the cache.
#include <cooperative_groups.h>

#include <type_traits>

#include "common.cuh"
#include "kernels.h"

namespace cg = cooperative_groups;

namespace pds::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kMaxPairs = 64;  // per block: D / 2 / C <= 64 (D <= 256 with C >= 2, or D <= 128)

template <typename TX> __device__ __forceinline__ float roundTo(float v) { return toF(fromF<TX>(v)); }

template <typename TX, typename TW> __device__ __forceinline__ void loadVec(const TX* p, float* v) {
  constexpr int V = Vec<TW>::N;
  if constexpr (std::is_same_v<TX, TW>) {
    Vec<TX> a; a.load(p);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = a.get(i);
  } else {
#pragma unroll
    for (int j = 0; j < V; j += 4) {
      const float4 f = *reinterpret_cast<const float4*>(p + j);
      v[j] = f.x; v[j + 1] = f.y; v[j + 2] = f.z; v[j + 3] = f.w;
    }
  }
}

struct QkvRopeArgs {
  const void* x; const void* normW; float eps;
  const void* W; const void* bias; const void* qNormW; const void* kNormW;
  const float* invFreq; const int32_t* positions; const int32_t* slots;
  void* qkv; void* kCache; void* vCache;
  int nH, nKV, D, H, C, P;
};

template <typename TX, typename T, int R>
__global__ void __launch_bounds__(kWarps * 32) gemvQkvRopeKernel(QkvRopeArgs a) {
  pdlWait();
  pdlTrigger();
  constexpr int V = Vec<T>::N;
  __shared__ float red[kWarps][R];
  __shared__ float inv[R];
  __shared__ float lo_[R][kMaxPairs], hi_[R][kMaxPairs];
  __shared__ float ssPart[R];
  const TX* x = (const TX*)a.x;
  const TX* g = (const TX*)a.normW;
  const T* W = (const T*)a.W;
  const int K = a.H, D = a.D, half = D / 2, heads = a.nH + 2 * a.nKV;
  const int head = blockIdx.x / a.C, rank = blockIdx.x % a.C;
  const int p0 = rank * a.P, pEnd = min(p0 + a.P, half);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kind = head < a.nH ? 0 : head < a.nH + a.nKV ? 1 : 2;  // q, k, v

  // input RMSNorm: the rows' inverse RMS over the hidden size (as rmsnorm.cu)
  {
    constexpr int XV = Vec<TX>::N;
    float ss[R];
#pragma unroll
    for (int r = 0; r < R; ++r) ss[r] = 0.f;
    for (int k = threadIdx.x * XV; k < K; k += blockDim.x * XV)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        Vec<TX> v; v.load(x + (size_t)r * K + k);
#pragma unroll
        for (int i = 0; i < XV; ++i) { const float f = v.get(i); ss[r] += f * f; }
      }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float s = warpSum(ss[r]);
      if (lane == 0) red[warp][r] = s;
    }
    __syncthreads();
    if (threadIdx.x < R) {
      float s = 0.f;
      for (int w = 0; w < kWarps; ++w) s += red[w][threadIdx.x];
      inv[threadIdx.x] = rsqrtf(s / K + a.eps);
    }
    __syncthreads();
  }

  // both rows of each pair owned by this warp, every token; outputs rounded as the GEMV stores them
  for (int p = p0 + warp; p < pEnd; p += kWarps) {
    const T* w0 = W + ((size_t)head * D + p) * K;
    const T* w1 = w0 + (size_t)half * K;
    float acc0[R], acc1[R];
#pragma unroll
    for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = 0.f;
    constexpr int U = 2;
    const int step = 32 * V;
    int k = lane * V;
    auto body = [&](const Vec<T>& v0, const Vec<T>& v1, int kk) {
      float gv[V];
      loadVec<TX, T>(g + kk, gv);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float xv[V];
        loadVec<TX, T>(x + (size_t)r * K + kk, xv);
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const float xn = roundTo<TX>(xv[i] * inv[r] * gv[i]);  // rmsnorm.cu's stored output
          acc0[r] += v0.get(i) * xn;
          acc1[r] += v1.get(i) * xn;
        }
      }
    };
    for (; k + (U - 1) * step < K; k += U * step) {
      Vec<T> v0[U], v1[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        v0[u].raw = __ldcs(reinterpret_cast<const uint4*>(w0 + k + u * step));
        v1[u].raw = __ldcs(reinterpret_cast<const uint4*>(w1 + k + u * step));
      }
#pragma unroll
      for (int u = 0; u < U; ++u) body(v0[u], v1[u], k + u * step);
    }
    for (; k < K; k += step) {
      Vec<T> v0, v1;
      v0.raw = __ldcs(reinterpret_cast<const uint4*>(w0 + k));
      v1.raw = __ldcs(reinterpret_cast<const uint4*>(w1 + k));
      body(v0, v1, k);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float s0 = warpSum(acc0[r]), s1 = warpSum(acc1[r]);
      if (lane == 0) { lo_[r][p - p0] = roundTo<TX>(s0); hi_[r][p - p0] = roundTo<TX>(s1); }
    }
  }
  __syncthreads();

  const int np = pEnd - p0;
  const TX* bias = (const TX*)a.bias;
  if (bias)
    for (int e = threadIdx.x; e < R * np; e += blockDim.x) {
      const int r = e / np, i = e % np, p = p0 + i;
      lo_[r][i] = roundTo<TX>(lo_[r][i] + toF(bias[(size_t)head * D + p]));
      hi_[r][i] = roundTo<TX>(hi_[r][i] + toF(bias[(size_t)head * D + p + half]));
    }
  const TX* nw = kind == 0 ? (const TX*)a.qNormW : kind == 1 ? (const TX*)a.kNormW : nullptr;
  if (nw) {  // uniform over the cluster (one head)
    __syncthreads();
    if (threadIdx.x < R) {
      float s = 0.f;
      for (int i = 0; i < np; ++i) s += lo_[threadIdx.x][i] * lo_[threadIdx.x][i] + hi_[threadIdx.x][i] * hi_[threadIdx.x][i];
      ssPart[threadIdx.x] = s;
    }
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();
    if (threadIdx.x < R) {
      float s = 0.f;
      for (int c = 0; c < a.C; ++c) s += cluster.map_shared_rank(ssPart, c)[threadIdx.x];
      inv[threadIdx.x] = rsqrtf(s / D + a.eps);
    }
    cluster.sync();  // the other blocks' reads of ssPart are done; inv is visible block-wide
  } else {
    __syncthreads();
  }

  for (int e = threadIdx.x; e < R * np; e += blockDim.x) {
    const int r = e / np, i = e % np, p = p0 + i;
    float lo = lo_[r][i], hi = hi_[r][i];
    if (nw) { lo = lo * inv[r] * toF(nw[p]); hi = hi * inv[r] * toF(nw[p + half]); }
    if (kind != 2) {
      float sn, cs;
      sincosf((float)a.positions[r] * a.invFreq[p], &sn, &cs);
      const float l = lo, h = hi;
      lo = l * cs - h * sn;
      hi = h * cs + l * sn;
    }
    TX* dst;
    if (kind == 0) {
      dst = (TX*)a.qkv + ((size_t)r * heads + head) * D;
    } else {
      const int slot = a.slots[r];
      if (slot < 0) continue;
      const int kvh = head - a.nH - (kind == 2 ? a.nKV : 0);
      dst = (TX*)(kind == 1 ? a.kCache : a.vCache) + ((size_t)slot * a.nKV + kvh) * D;
    }
    dst[p] = fromF<TX>(lo);
    dst[p + half] = fromF<TX>(hi);
  }
}

}  // namespace

bool gemvQkvRopeSupported(int D) { return D % 2 == 0 && D >= 2 && D <= 256; }

void launchGemvQkvRope(DType xt, DType t, const void* x, const void* normW, float eps, const void* W, void* qkv, int T,
                       int nH, int nKV, int D, int H, const void* bias, const void* qNormW, const void* kNormW,
                       const float* invFreq, const int32_t* positions, const int32_t* slots, void* kCache, void* vCache,
                       cudaStream_t s) {
  if (T <= 0) return;
  if (!gemvQkvRopeSupported(D)) throw std::runtime_error("CUDA backend: gemv_qkv_rope: head_dim must be even and <= 256");
  if (H % (16 / (int)dtypeSize(t))) throw std::runtime_error("CUDA backend: gemv_qkv_rope: hidden not a multiple of the vector width");
  if (xt != t && xt != DType::F32) throw std::runtime_error("CUDA backend: gemv_qkv_rope: x must be in the weight dtype or f32");
  const int half = D / 2;
  int C = 8;  // portable cluster size; fewer when the pairs run out
  while (C > 1 && (half + C - 1) / C < 2) C /= 2;
  const int P = (half + C - 1) / C;
  if (P > kMaxPairs) throw std::runtime_error("CUDA backend: gemv_qkv_rope: head_dim too large");
  QkvRopeArgs a{x, normW, eps, W, bias, qNormW, kNormW, invFreq, positions, slots, qkv, kCache, vCache, nH, nKV, D, H, C, P};
  const int heads = nH + 2 * nKV;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(heads * C); cfg.blockDim = dim3(kWarps * 32); cfg.dynamicSmemBytes = 0; cfg.stream = s;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = C; attr[0].val.clusterDim.y = 1; attr[0].val.clusterDim.z = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdlEnabled() ? 2 : 1;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    auto go = [&](auto kernel) { check(cudaLaunchKernelEx(&cfg, kernel, a), "gemv_qkv_rope launch"); };
    const bool f32x = xt != t;
    switch (T) {
#define PDS_QKV_CASE(r) case r: if (f32x) go(gemvQkvRopeKernel<float, E, r>); else go(gemvQkvRopeKernel<E, E, r>); break;
      PDS_QKV_CASE(1) PDS_QKV_CASE(2) PDS_QKV_CASE(3) PDS_QKV_CASE(4)
      PDS_QKV_CASE(5) PDS_QKV_CASE(6) PDS_QKV_CASE(7) PDS_QKV_CASE(8)
#undef PDS_QKV_CASE
      default: throw std::runtime_error("CUDA backend: gemv_qkv_rope: too many rows");
    }
  });
  checkLaunch("gemv_qkv_rope");
}

}  // namespace pds::cuda
