// Split-K paged attention with the split merge folded in: one launch, no separate combine kernel.
// Block = (split, kv head x group of up to 8 query heads, token); 128 threads = 4 warps. Per pass of
// KI = 4 warps x (32 / (D/8)) keys per warp-load x U keys, every thread issues its U key loads AND its
// U value loads before using any (V does not depend on the scores), so a block's KV bytes are in flight
// together. D/8 lanes share a key, 8 elements each; a lane keeps a running (max, sum, o[8]) per query
// head over the keys it loaded (online softmax), merged across the warp by shuffles and across warps
// through shared memory once at the end: no barrier inside the key loop.
// Output: a token whose context fits one split writes out directly. Otherwise each split writes its
// unnormalized o and (max, sum) to wsO/wsML, then bumps counters[token, blockIdx.y]; the block that
// brings it to the token's split count merges all splits into out and resets the counter to 0, so the
// workspace is ready for the next launch (CUDA-graph replays included) without a memset.
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

namespace {

constexpr int kThreads = 128, kWarps = kThreads / 32;
constexpr int kMaxG = 8;

// Loads per key per lane: 8 elements = one 16-byte vector of a 2-byte type, two of f32.
template <typename T> constexpr int kRawVecs = sizeof(T) == 4 ? 2 : 1;
// Keys per lane per pass: keeps the raw K/V registers at ~64 (32 when 8 query heads need q and o regs).
template <typename T, int MG> constexpr int kUnroll = (MG >= 8 ? 32 : 64) / (4 * (int)sizeof(T));

template <typename T> __device__ __forceinline__ void toFloat8(const uint4* raw, float* out) {
  if constexpr (sizeof(T) == 4) {
    const float* f = reinterpret_cast<const float*>(raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = f[i];
  } else {
    const T* h = reinterpret_cast<const T*>(raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = toF(h[i]);
  }
}

// e^(m - M) for merging a partial with max m into max M >= m; 1 when equal (also both -inf: empty).
__device__ __forceinline__ float rescale(float m, float M) { return m == M ? 1.f : __expf(m - M); }

template <typename T, int MG>
__global__ void __launch_bounds__(kThreads) pagedAttentionFusedKernel(PagedAttnArgs a) {
  extern __shared__ float smem[];
  constexpr int U = kUnroll<T, MG>, RV = kRawVecs<T>;
  const int D = a.D, LPK = D / 8, KW = 32 / LPK, KI = kWarps * KW * U;
  const int t = blockIdx.z, split = blockIdx.x;
  const int G = a.nH / a.nKV, chunks = (G + MG - 1) / MG;
  const int kvh = blockIdx.y / chunks, g0 = (blockIdx.y % chunks) * MG;
  const int gN = min(MG, G - g0);
  // No load below waits on a branch or on another load it does not need: an in-order SM would otherwise
  // pay a memory round trip per dependent step (measured: ~8 us per pass when the K/V loads sat behind
  // per-key validity branches).
  const int seq = __ldg(a.tokenSeq + t);
  const int ctx = __ldg(a.tokenCtx + t);
  const int start = split * a.splitSize;
  if (start >= ctx) return;
  const int len = min(a.splitSize, ctx - start);
  const int ns = (ctx + a.splitSize - 1) / a.splitSize;
  const int32_t* bt = a.blockTables + (size_t)seq * a.btStride;
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int sub = lane % LPK, kq = lane / LPK;
  const int headBase = kvh * G + g0;

  float q[MG][8];
  {
    const T* qrow = (const T*)a.q + (size_t)t * a.qStride + (size_t)headBase * D + sub * 8;
#pragma unroll
    for (int g = 0; g < MG; ++g) {
      if (g < gN) {
        uint4 r[RV];
#pragma unroll
        for (int v = 0; v < RV; ++v) r[v] = reinterpret_cast<const uint4*>(qrow + (size_t)g * D)[v];
        toFloat8<T>(r, q[g]);
#pragma unroll
        for (int i = 0; i < 8; ++i) q[g][i] *= a.scale;
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) q[g][i] = 0.f;
      }
    }
  }

  float m[MG], l[MG], acc[MG][8];
#pragma unroll
  for (int g = 0; g < MG; ++g) {
    m[g] = -INFINITY; l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.f;
  }

  for (int j0 = 0; j0 < len; j0 += KI) {
    // keys past the split are clamped to its last key (loaded, then masked): all loads unconditional
    uint4 kr[U][RV], vr[U][RV];
    bool valid[U];
    int blk[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = j0 + (warp * U + u) * KW + kq;
      valid[u] = j < len;
      blk[u] = __ldg(bt + (start + min(j, len - 1)) / a.blockSize);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int tok = start + min(j0 + (warp * U + u) * KW + kq, len - 1);
      const size_t off = (((size_t)blk[u] * a.blockSize + tok % a.blockSize) * a.nKV + kvh) * D + sub * 8;
#pragma unroll
      for (int v = 0; v < RV; ++v) {
        kr[u][v] = __ldg(reinterpret_cast<const uint4*>(kc + off) + v);
        vr[u][v] = __ldg(reinterpret_cast<const uint4*>(vc + off) + v);
      }
    }
    // scores s[u][g] (every lane of a key's LPK lanes holds the full dot product)
    float s[U][MG];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float k[8];
      toFloat8<T>(kr[u], k);
#pragma unroll
      for (int g = 0; g < MG; ++g) {
        float d = 0.f;
        if (g < gN) {
#pragma unroll
          for (int i = 0; i < 8; ++i) d += k[i] * q[g][i];
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
          if (o < LPK) d += __shfl_xor_sync(0xffffffffu, d, o);
        s[u][g] = valid[u] ? d : -INFINITY;
      }
    }
#pragma unroll
    for (int g = 0; g < MG; ++g) {
      if (g >= gN) continue;
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < U; ++u) mx = fmaxf(mx, s[u][g]);
      const float c = rescale(m[g], mx);
      m[g] = mx;
      l[g] *= c;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[g][i] *= c;
#pragma unroll
      for (int u = 0; u < U; ++u) s[u][g] = s[u][g] == -INFINITY ? 0.f : __expf(s[u][g] - mx);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float v[8];
      toFloat8<T>(vr[u], v);
#pragma unroll
      for (int g = 0; g < MG; ++g) {
        if (g >= gN) continue;
        l[g] += s[u][g];
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] += s[u][g] * v[i];
      }
    }
  }

  // merge the KW key groups of the warp (lanes sub, sub + LPK, ...)
  for (int o = LPK; o < 32; o <<= 1) {
#pragma unroll
    for (int g = 0; g < MG; ++g) {
      if (g >= gN) continue;
      const float mo = __shfl_xor_sync(0xffffffffu, m[g], o), lo = __shfl_xor_sync(0xffffffffu, l[g], o);
      const float M = fmaxf(m[g], mo), ca = rescale(m[g], M), cb = rescale(mo, M);
      m[g] = M;
      l[g] = l[g] * ca + lo * cb;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[g][i] = acc[g][i] * ca + __shfl_xor_sync(0xffffffffu, acc[g][i], o) * cb;
    }
  }
  // merge the warps: [kWarps][gN][D] partial o, then [kWarps][gN] max and sum
  const int GB = min(G, MG);
  float* wO = smem;
  float* wM = wO + kWarps * GB * D;
  float* wL = wM + kWarps * GB;
  if (kq == 0) {
#pragma unroll
    for (int g = 0; g < MG; ++g) {
      if (g >= gN) continue;
#pragma unroll
      for (int i = 0; i < 8; ++i) wO[(warp * GB + g) * D + sub * 8 + i] = acc[g][i];
      if (sub == 0) { wM[warp * GB + g] = m[g]; wL[warp * GB + g] = l[g]; }
    }
  }
  __syncthreads();
  const size_t th0 = (size_t)t * a.nH + headBase;
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
      o += c * wO[(w * GB + g) * D + d];
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

int groupFor(int G) { return G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : kMaxG; }

size_t fusedSmemBytes(const PagedAttnArgs& a, int mg) {
  const size_t gb = std::min(a.nH / a.nKV, mg);
  const size_t mergeWarps = kWarps * gb * (a.D + 2);
  const size_t mergeSplits = 6 * kThreads;
  return sizeof(float) * std::max(mergeWarps, mergeSplits);
}

template <typename T, int MG>
void launchFusedTyped(const PagedAttnArgs& a, cudaStream_t s) {
  const size_t smem = fusedSmemBytes(a, MG);  // <= 33 KB (D = 256, 8 query heads)
  const int G = a.nH / a.nKV;
  dim3 grid(a.maxSplits, a.nKV * ((G + MG - 1) / MG), a.T);
  pagedAttentionFusedKernel<T, MG><<<grid, kThreads, smem, s>>>(a);
}

}  // namespace

int pagedAttentionKeysPerPass(DType t, int D, int nH, int nKV) {
  const int mg = groupFor(nH / std::max(1, nKV));
  const int lanesPerKey = std::max(1, D / 8), u = (mg >= 8 ? 32 : 64) / (4 * (int)(t == DType::F32 ? 4 : 2));
  return kWarps * std::max(1, 32 / lanesPerKey) * u;
}

void launchPagedAttentionFused(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  const int lpk = a.D / 8;
  if (a.D % 8 || lpk > 32 || (lpk & (lpk - 1))) throw std::runtime_error("CUDA backend: attention: head_dim must be 8 * a power of two, at most 256");
  if (a.nKV <= 0 || a.nH % a.nKV) throw std::runtime_error("CUDA backend: attention: heads not a multiple of kv heads");
  if (a.splitSize <= 0 || a.maxSplits <= 0) throw std::runtime_error("CUDA backend: attention: bad split");
  if (a.maxSplits > 1 && !a.counters) throw std::runtime_error("CUDA backend: attention: split merge needs a counter workspace");
  const int G = a.nH / a.nKV;
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    switch (groupFor(G)) {
      case 1: launchFusedTyped<E, 1>(a, s); break;
      case 2: launchFusedTyped<E, 2>(a, s); break;
      case 4: launchFusedTyped<E, 4>(a, s); break;
      default: launchFusedTyped<E, kMaxG>(a, s); break;
    }
  });
  checkLaunch("paged_attention_fused");
}

}  // namespace pds::cuda
