// Split-K paged attention, one query token per row (decode; also the generic prefill path for any dtype
// and head_dim). Block = (split, kv head x group-of-8 query heads, token); 128 threads. The query heads
// sharing a KV head (GQA) are served from one pass over that head's keys and values.
//   phase 1: scores[g][j] = q_g . k_j (q pre-scaled), D/8 lanes per key, 8 elements per lane
//   phase 2: per head max and exp over the split (warp per head)
//   phase 3: o_g = sum_j p[g][j] v_j, lanes over D, groups over keys, reduced through shared memory
// Writes unnormalized o, running max m and sum l per (token, head, split); attention-combine.cu merges.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

constexpr int kAttnThreads = 128;
constexpr int kMaxGroup = 8;  // query heads per block at most

template <typename T> __device__ __forceinline__ void load8(const T* p, float* out) {
  if constexpr (sizeof(T) == 4) {
    Vec<float> a, b; a.load((const float*)p); b.load((const float*)p + 4);
#pragma unroll
    for (int i = 0; i < 4; ++i) { out[i] = a.get(i); out[4 + i] = b.get(i); }
  } else {
    Vec<T> a; a.load(p);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = a.get(i);
  }
}

// kMaxG = query heads per block (1, 2, 4 or 8: the GQA group, capped at 8); it sizes the registers.
template <typename T, int kMaxG>
__global__ void __launch_bounds__(kAttnThreads) pagedAttentionKernel(PagedAttnArgs a) {
  pdlWait();
  pdlTrigger();
  extern __shared__ float smem[];
  const int D = a.D, LPK = D / 8, NGRP = kAttnThreads / LPK;
  const int t = blockIdx.z, split = blockIdx.x;
  const int G = a.nH / a.nKV, chunks = (G + kMaxG - 1) / kMaxG;
  const int kvh = blockIdx.y / chunks, g0 = (blockIdx.y % chunks) * kMaxG;
  const int gN = min(kMaxG, G - g0);
  const int ctx = a.tokenCtx[t];
  const int start = split * a.splitSize;
  if (start >= ctx) return;
  const int len = min(a.splitSize, ctx - start);
  const int seq = a.tokenSeq[t];
  const int32_t* bt = a.blockTables + (size_t)seq * a.btStride;
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;

  float* qs = smem;                         // [kMaxG][D]
  float* scores = qs + kMaxG * D;           // [kMaxG][splitSize]
  const int GB = min(G, kMaxG);              // query heads per block (smem sized for this)
  float* red = scores + kMaxG * a.splitSize;  // [NGRP][GB][D]
  __shared__ float mS[kMaxG], lS[kMaxG];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int headBase = kvh * G + g0;
  const T* qrow = (const T*)a.q + (size_t)t * a.qStride;
  for (int i = tid; i < gN * D; i += kAttnThreads)
    qs[i] = toF(qrow[(size_t)headBase * D + i]) * a.scale;
  __syncthreads();

  // phase 1: U passes of keys loaded before any is used, to keep several loads in flight
  constexpr int U = 4;
  const int sub = lane % LPK, keysPerWarp = 32 / LPK, warpStride = (kAttnThreads / 32) * keysPerWarp;
  for (int jb = warp * keysPerWarp; jb < len; jb += warpStride * U) {
    float k[U][8];
    bool valid[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = jb + u * warpStride + lane / LPK;
      valid[u] = j < len;
      if (valid[u]) {
        const int tok = start + j;
        const size_t slot = (size_t)bt[tok / a.blockSize] * a.blockSize + tok % a.blockSize;
        load8(kc + (slot * a.nKV + kvh) * D + sub * 8, k[u]);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) k[u][i] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (jb + u * warpStride >= len) break;  // warp-uniform
      const int j = jb + u * warpStride + lane / LPK;
#pragma unroll
      for (int g = 0; g < kMaxG; ++g) {
        if (g < gN) {
          const float* qg = qs + g * D + sub * 8;
          float d = 0.f;
#pragma unroll
          for (int i = 0; i < 8; ++i) d += k[u][i] * qg[i];
          for (int o = LPK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
          if (valid[u] && sub == 0) scores[g * a.splitSize + j] = d;
        }
      }
    }
  }
  __syncthreads();

  // phase 2
  for (int g = warp; g < gN; g += kAttnThreads / 32) {
    float* sg = scores + g * a.splitSize;
    float m = -INFINITY;
    for (int j = lane; j < len; j += 32) m = fmaxf(m, sg[j]);
    m = warpMax(m);
    float l = 0.f;
    for (int j = lane; j < len; j += 32) { const float p = __expf(sg[j] - m); sg[j] = p; l += p; }
    l = warpSum(l);
    if (lane == 0) { mS[g] = m; lS[g] = l; }
  }
  __syncthreads();

  // phase 3
  const int grp = tid / LPK, sub3 = tid % LPK;
  float acc[kMaxG][8];
#pragma unroll
  for (int g = 0; g < kMaxG; ++g)
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.f;
  constexpr int UV = 4;
  for (int j0 = grp; j0 < len; j0 += NGRP * UV) {
    float v[UV][8];
#pragma unroll
    for (int u = 0; u < UV; ++u) {
      const int j = j0 + u * NGRP;
#pragma unroll
      for (int i = 0; i < 8; ++i) v[u][i] = 0.f;
      if (j < len) {
        const int tok = start + j;
        const size_t slot = (size_t)bt[tok / a.blockSize] * a.blockSize + tok % a.blockSize;
        load8(vc + (slot * a.nKV + kvh) * D + sub3 * 8, v[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < UV; ++u) {
      const int j = j0 + u * NGRP;
      if (j >= len) break;
#pragma unroll
      for (int g = 0; g < kMaxG; ++g) {
        if (g < gN) {
          const float p = scores[g * a.splitSize + j];
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[g][i] += p * v[u][i];
        }
      }
    }
  }
#pragma unroll
  for (int g = 0; g < kMaxG; ++g)
    if (g < gN)
#pragma unroll
      for (int i = 0; i < 8; ++i) red[((size_t)grp * GB + g) * D + sub3 * 8 + i] = acc[g][i];
  __syncthreads();
  for (int idx = tid; idx < gN * D; idx += kAttnThreads) {
    const int g = idx / D, d = idx % D;
    float s = 0.f;
    for (int r = 0; r < NGRP; ++r) s += red[((size_t)r * GB + g) * D + d];
    const size_t th = (size_t)t * a.nH + headBase + g;
    a.wsO[(th * a.maxSplits + split) * D + d] = s;
    if (d == 0) {
      a.wsML[(th * a.maxSplits + split) * 2] = mS[g];
      a.wsML[(th * a.maxSplits + split) * 2 + 1] = lS[g];
    }
  }
}

static size_t pagedSmemBytes(const PagedAttnArgs& a, int mg) {
  const int gb = std::min(a.nH / a.nKV, mg);
  return sizeof(float) * ((size_t)mg * a.D + (size_t)mg * a.splitSize + (size_t)kAttnThreads / (a.D / 8) * gb * a.D);
}

template <typename T, int MG>
static void launchPagedTyped(const PagedAttnArgs& a, cudaStream_t s) {
  static unsigned devicesSet = 0;  // per instantiation and device: the limit is a property of the function
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  if (!(devicesSet & (1u << dev))) {
    check(cudaFuncSetAttribute(pagedAttentionKernel<T, MG>, cudaFuncAttributeMaxDynamicSharedMemorySize, 160 * 1024),
          "paged attention: shared memory limit");
    devicesSet |= 1u << dev;
  }
  const int G = a.nH / a.nKV;
  dim3 grid(a.maxSplits, a.nKV * ((G + MG - 1) / MG), a.T);
  launchPdl(pagedAttentionKernel<T, MG>, grid, kAttnThreads, pagedSmemBytes(a, MG), s, a);
}

void launchPagedAttention(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  const int lpk = a.D / 8;
  if (a.D % 8 || lpk > 32 || (lpk & (lpk - 1))) throw std::runtime_error("CUDA backend: attention: head_dim must be 8 * a power of two, at most 256");
  if (a.nKV <= 0 || a.nH % a.nKV) throw std::runtime_error("CUDA backend: attention: heads not a multiple of kv heads");
  if (a.splitSize % 32 || a.maxSplits <= 0) throw std::runtime_error("CUDA backend: attention: bad split");
  const int G = a.nH / a.nKV;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    if (G <= 1) launchPagedTyped<E, 1>(a, s);
    else if (G <= 2) launchPagedTyped<E, 2>(a, s);
    else if (G <= 4) launchPagedTyped<E, 4>(a, s);
    else launchPagedTyped<E, kMaxGroup>(a, s);
  });
  checkLaunch("paged_attention");
  launchAttentionCombine(t, a, s);
}

}  // namespace pds::cuda
