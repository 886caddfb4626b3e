// Split-K paged attention with the split merge folded in: one launch, no separate combine kernel.
// Block = (split, kv head x group of up to 8 query heads, token); 4 warps, or 8 when the split fills a
// pass of 8. Per pass of KI = warps x (32 / (D/8)) keys per warp-load x U keys, every thread issues its
// U key loads AND its
// U value loads before using any (V does not depend on the scores), so a block's KV bytes are in flight
// together. D/8 lanes share a key, 8 elements each; a lane keeps a running (max, sum, o[8]) per query
// head over the keys it loaded (online softmax), merged across the warp by shuffles and across warps
// through shared memory once at the end: no barrier inside the key loop.
// Output: a token whose context fits one split writes out directly. Otherwise each split writes its
// unnormalized o and (max, sum) to wsO/wsML, then bumps counters[token, blockIdx.y]; the block that
// brings it to the token's split count merges all splits into out and resets the counter to 0, so the
// workspace is ready for the next launch (CUDA-graph replays included) without a memset.
#include <type_traits>

#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

namespace {

constexpr int kMinWarps = 4, kMaxWarps = 8;  // per block: 8 when one pass of 8 warps fits in the split
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

template <typename T, int MG, int kWarps>
__global__ void __launch_bounds__(kWarps * 32) pagedAttentionFusedKernel(PagedAttnArgs a) {
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
  float* wM = wO + kWarps * GB * (D + 4);
  float* wL = wM + kWarps * GB;
  if (kq == 0) {
#pragma unroll
    for (int g = 0; g < MG; ++g) {
      if (g >= gN) continue;
#pragma unroll
      for (int i = 0; i < 8; ++i) wO[(warp * GB + g) * (D + 4) + sub * 8 + i] = acc[g][i];
      if (sub == 0) { wM[warp * GB + g] = m[g]; wL[warp * GB + g] = l[g]; }
    }
  }
  finishSplit<T, kWarps>(a, smem, GB, gN, (size_t)t * a.nH + headBase, split, ns);
}


// ---- tensor-core variant (f16/bf16, D = 64 or 128): mma.m16n8k16, query heads as the M rows ----
// Per warp step of 16 keys: S^T [8 heads (rows 8..15 zero) x 16 keys] = Q K^T over D, then
// O [heads x D] += P [heads x 16 keys] V [16 keys x D]. Fragment layouts (lane = 4 qd + r):
//   A regs (qd, 2r..2r+1) (qd+8, ..) (qd, 2r+8..) (qd+8, ..); B (2r..2r+1, qd) (2r+8.., qd); C (qd, 2r..2r+1) (qd+8, ..).
// The contraction index d of Q K^T is permuted so that each lane's B fragments are whole 16-byte loads:
// in k-steps 2p and 2p+1 lane r holds d = 32p + 8r + 0..7 (words 0,1 -> step 2p; words 2,3 -> step 2p+1),
// and Q is loaded with the same map. O's column n of n-tile t is d = (D/8) n + t, so lane qd needs
// V[key][(D/8) qd .. + D/8) (contiguous) and holds O[qd][(D/4) r .. + D/4) at the end.
template <typename T> __device__ __forceinline__ void mma16816(float* c, float* cPad, uint32_t a0, uint32_t a2, uint32_t b0,
                                                              uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(cPad[0]), "+f"(cPad[1])
                 : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(cPad[0]), "+f"(cPad[1])
                 : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1));
}

// P is fed to the tensor cores as hi + lo parts (two MMAs): one 16-bit rounding of P measurably moved bf16
// greedy tokens (a qwen3-tiny step at reference margin 0.2); with the split the result matches f32 P.
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

template <typename T> __device__ __forceinline__ void splitPack2(float x, float y, uint32_t& hi, uint32_t& lo) {
  hi = pack2<T>(x, y);
  const T* h = reinterpret_cast<const T*>(&hi);
  lo = pack2<T>(x - toF(h[0]), y - toF(h[1]));
}

__device__ __forceinline__ uint32_t word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

constexpr int kMmaWarps = 8, kMmaKeys = 16;  // keys per warp step

template <typename T, int D>
__global__ void __launch_bounds__(kMmaWarps * 32) pagedAttentionMmaKernel(PagedAttnArgs a) {
  extern __shared__ float smem[];
  constexpr int KP = D / 32;   // 16-byte K loads per key per lane (= k-step pairs)
  constexpr int VL = D / 64;   // 16-byte V loads per key per lane
  constexpr int NT = D / 8;    // n-tiles of O
  const int t = blockIdx.z, split = blockIdx.x;
  const int G = a.nH / a.nKV, chunks = (G + 7) / 8;
  const int kvh = blockIdx.y / chunks, g0 = (blockIdx.y % chunks) * 8;
  const int gN = min(8, G - g0);
  const int seq = __ldg(a.tokenSeq + t);
  const int ctx = __ldg(a.tokenCtx + t);
  const int start = split * a.splitSize;
  if (start >= ctx) return;
  const int len = min(a.splitSize, ctx - start);
  const int ns = (ctx + a.splitSize - 1) / a.splitSize;
  const int32_t* bt = a.blockTables + (size_t)seq * a.btStride;
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, qd = lane >> 2, r = lane & 3;
  const int headBase = kvh * G + g0;

  uint4 qa[KP];
  {
    const T* qrow = (const T*)a.q + (size_t)t * a.qStride + (size_t)(headBase + qd) * D + 8 * r;
#pragma unroll
    for (int p = 0; p < KP; ++p)
      qa[p] = qd < gN ? __ldg(reinterpret_cast<const uint4*>(qrow + 32 * p)) : make_uint4(0, 0, 0, 0);
  }
  float m = -INFINITY, l = 0.f;
  float o[NT][2], oPad[NT][2];
#pragma unroll
  for (int n = 0; n < NT; ++n) o[n][0] = o[n][1] = oPad[n][0] = oPad[n][1] = 0.f;

  auto rowOf = [&](int j) {  // element offset of key j of the split (clamped into it) for this kv head
    const int tok = start + min(j, len - 1);
    return (((size_t)__ldg(bt + tok / a.blockSize) * a.blockSize + tok % a.blockSize) * a.nKV + kvh) * D;
  };
  for (int j0 = warp * kMmaKeys; j0 < len; j0 += kMmaWarps * kMmaKeys) {
    size_t offK[2], offV[4];
#pragma unroll
    for (int i = 0; i < 2; ++i) offK[i] = rowOf(j0 + 8 * i + qd);
#pragma unroll
    for (int i = 0; i < 4; ++i) offV[i] = rowOf(j0 + 2 * r + (i & 1) + 8 * (i >> 1));
    uint4 kr[2][KP], vr[4][VL];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int p = 0; p < KP; ++p) kr[i][p] = __ldg(reinterpret_cast<const uint4*>(kc + offK[i] + 32 * p + 8 * r));
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int h = 0; h < VL; ++h) vr[i][h] = __ldg(reinterpret_cast<const uint4*>(vc + offV[i] + NT * qd + 8 * h));

    // S^T tiles (keys j0 + 8 i + 2r + e)
    float s[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float c[2] = {0.f, 0.f}, cPad[2] = {0.f, 0.f};
#pragma unroll
      for (int p = 0; p < KP; ++p) {
        mma16816<T>(c, cPad, qa[p].x, qa[p].y, kr[i][p].x, kr[i][p].y);
        mma16816<T>(c, cPad, qa[p].z, qa[p].w, kr[i][p].z, kr[i][p].w);
      }
#pragma unroll
      for (int e = 0; e < 2; ++e) s[i][e] = j0 + 8 * i + 2 * r + e < len ? c[e] * a.scale : -INFINITY;
    }
    float mx = fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float mNew = fmaxf(m, mx), mRef = mNew == -INFINITY ? 0.f : mNew;
    const float cf = __expf(m - mRef);
    m = mNew;
    float pr[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int e = 0; e < 2; ++e) pr[i][e] = __expf(s[i][e] - mRef);
    l = l * cf + (pr[0][0] + pr[0][1]) + (pr[1][0] + pr[1][1]);
    uint32_t pa0, pa2, pl0, pl2;
    splitPack2<T>(pr[0][0], pr[0][1], pa0, pl0);
    splitPack2<T>(pr[1][0], pr[1][1], pa2, pl2);
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      o[n][0] *= cf; o[n][1] *= cf;
      const int w = (n % 8) / 2;
      const uint32_t sel = (n & 1) ? 0x7632u : 0x5410u;
      const uint32_t b0 = __byte_perm(word(vr[0][n / 8], w), word(vr[1][n / 8], w), sel);
      const uint32_t b1 = __byte_perm(word(vr[2][n / 8], w), word(vr[3][n / 8], w), sel);
      mma16816<T>(o[n], oPad[n], pa0, pa2, b0, b1);
      mma16816<T>(o[n], oPad[n], pl0, pl2, b0, b1);
    }
  }
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);

  const int GB = min(G, 8), ldO = D + 4;
  float* wO = smem;
  float* wM = wO + kMmaWarps * GB * ldO;
  float* wL = wM + kMmaWarps * GB;
  if (qd < gN) {
    float* row = wO + (warp * GB + qd) * ldO;
#pragma unroll
    for (int n = 0; n < NT; ++n) { row[NT * (2 * r) + n] = o[n][0]; row[NT * (2 * r + 1) + n] = o[n][1]; }
    if (r == 0) { wM[warp * GB + qd] = m; wL[warp * GB + qd] = l; }
  }
  finishSplit<T, kMmaWarps>(a, smem, GB, gN, (size_t)t * a.nH + headBase, split, ns);
}

int groupFor(int G) { return G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : kMaxG; }

size_t fusedSmemBytes(const PagedAttnArgs& a, int mg, int warps) {
  const size_t gb = std::min(a.nH / a.nKV, mg);
  const size_t mergeWarps = warps * gb * (a.D + 6);
  const size_t mergeSplits = 6 * 32 * warps;
  return sizeof(float) * std::max(mergeWarps, mergeSplits);
}

bool mmaApplies(DType t, int D) { return t != DType::F32 && (D == 64 || D == 128); }

int keysPerPass(DType t, int D, int mg, int warps) {
  const int u = (mg >= 8 ? 32 : 64) / (4 * (int)(t == DType::F32 ? 4 : 2));
  return warps * std::max(1, 32 / std::max(1, D / 8)) * u;
}

template <typename T, int MG>
void launchFusedTyped(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  const int G = a.nH / a.nKV;
  dim3 grid(a.maxSplits, a.nKV * ((G + MG - 1) / MG), a.T);
  if (a.splitSize >= keysPerPass(t, a.D, MG, kMaxWarps) && fusedSmemBytes(a, MG, kMaxWarps) <= 48 * 1024)
    pagedAttentionFusedKernel<T, MG, kMaxWarps><<<grid, kMaxWarps * 32, fusedSmemBytes(a, MG, kMaxWarps), s>>>(a);
  else
    pagedAttentionFusedKernel<T, MG, kMinWarps><<<grid, kMinWarps * 32, fusedSmemBytes(a, MG, kMinWarps), s>>>(a);
}

}  // namespace

bool pagedAttentionTensorCores(DType t, int D) { return mmaApplies(t, D); }

int pagedAttentionFusedSplit(DType t, int D, int nH, int nKV, int T, int ctxCap, int numSms) {
  const int perSplit = T * pagedAttentionCountersPerToken(nH, nKV);  // blocks per split index
  auto up = [](int x, int m) { return (x + m - 1) / m * m; };
  if (mmaApplies(t, D)) {
    // one 256-thread block per SM fits: one wave of blocks, each warp at least one 16-key step of a
    // 128-key pass, and two passes (256) while that still keeps half the SMs busy (measured at batch 1,
    // context 2049, 8 kv heads: split 256 9.0 us, 128 11.2 us, 64 15.5 us, 512 11.4 us)
    const int waveSplits = std::max(1, numSms / perSplit);
    int split = std::max(kMmaWarps * kMmaKeys, up((ctxCap + waveSplits - 1) / waveSplits, kMmaKeys));
    if (split < 256 && (ctxCap + 255) / 256 * perSplit >= numSms / 2) split = 256;
    return split;
  }
  // ~8 blocks per SM, at least one pass of loads, at most 256 tokens
  const int splits = std::max(1, (8 * numSms + perSplit - 1) / perSplit);
  const int pass = pagedAttentionKeysPerPass(t, D, nH, nKV);
  return std::min(256, up(std::max((ctxCap + splits - 1) / splits, pass), 32));
}

int pagedAttentionKeysPerPass(DType t, int D, int nH, int nKV) {
  if (mmaApplies(t, D)) return kMmaWarps * kMmaKeys;
  return keysPerPass(t, D, groupFor(nH / std::max(1, nKV)), kMinWarps);
}

void launchPagedAttentionFused(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  if (a.T <= 0) return;
  const int lpk = a.D / 8;
  if (a.D % 8 || lpk > 32 || (lpk & (lpk - 1))) throw std::runtime_error("CUDA backend: attention: head_dim must be 8 * a power of two, at most 256");
  if (a.nKV <= 0 || a.nH % a.nKV) throw std::runtime_error("CUDA backend: attention: heads not a multiple of kv heads");
  if (a.splitSize <= 0 || a.maxSplits <= 0) throw std::runtime_error("CUDA backend: attention: bad split");
  if (a.maxSplits > 1 && !a.counters) throw std::runtime_error("CUDA backend: attention: split merge needs a counter workspace");
  const int G = a.nH / a.nKV;
  if (mmaApplies(t, a.D)) {
    dim3 grid(a.maxSplits, a.nKV * ((G + 7) / 8), a.T);
    const size_t smem = sizeof(float) * std::max<size_t>(kMmaWarps * std::min(G, 8) * (a.D + 6), 6 * 32 * kMmaWarps);
    auto go = [&](auto kernel) { kernel<<<grid, kMmaWarps * 32, smem, s>>>(a); };
    if (t == DType::BF16) {
      if (a.D == 64) go(pagedAttentionMmaKernel<__nv_bfloat16, 64>); else go(pagedAttentionMmaKernel<__nv_bfloat16, 128>);
    } else {
      if (a.D == 64) go(pagedAttentionMmaKernel<__half, 64>); else go(pagedAttentionMmaKernel<__half, 128>);
    }
    checkLaunch("paged_attention_mma");
    return;
  }
  dispatchDType(t, [&](auto tag) {
    using E = decltype(tag);
    switch (groupFor(G)) {
      case 1: launchFusedTyped<E, 1>(t, a, s); break;
      case 2: launchFusedTyped<E, 2>(t, a, s); break;
      case 4: launchFusedTyped<E, 4>(t, a, s); break;
      default: launchFusedTyped<E, kMaxG>(t, a, s); break;
    }
  });
  checkLaunch("paged_attention_fused");
}

}  // namespace pds::cuda
