// Split-K paged attention with the split merge folded in: one launch, no separate combine kernel
// (launchPagedAttentionFused). f16/bf16 KV with head_dim 64/128 goes to the tensor-core variant
// (paged-attention-mma.cu); this file holds the CUDA-core variant for every other case, and the launcher.
// Block = (split, kv head x group of up to 8 query heads, token); 4 warps, or 8 when the split fills a
// pass of 8. Per pass of KI = warps x (32 / (D/8)) keys per warp-load x U keys, every thread issues its
// U key loads AND its U value loads before using any (V does not depend on the scores), so a block's KV
// bytes are in flight together. D/8 lanes share a key, 8 elements each; a lane keeps a running
// (max, sum, o[8]) per query head over the keys it loaded (online softmax), merged across the warp by
// shuffles and across warps through shared memory once at the end: no barrier inside the key loop.
// Output (finishSplit, paged-attention-merge.cuh): a token whose context fits one split writes out
// directly. Otherwise each split writes its unnormalized o and (max, sum) to wsO/wsML, then bumps
// counters[token, blockIdx.y]; the block that brings it to the token's split count merges all splits
// into out and resets the counter to 0, so the workspace is ready for the next launch (CUDA-graph
// replays included) without a memset.
#include "paged-attention-merge.cuh"

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

template <typename T, int MG, int kWarps>
__global__ void __launch_bounds__(kWarps * 32) pagedAttentionFusedKernel(PagedAttnArgs a) {
  pdlWait();
  pdlTrigger();
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


int groupFor(int G) { return G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : kMaxG; }

size_t fusedSmemBytes(const PagedAttnArgs& a, int mg, int warps) {
  const size_t gb = std::min(a.nH / a.nKV, mg);
  const size_t mergeWarps = warps * gb * (a.D + 6);
  const size_t mergeSplits = 6 * 32 * warps;
  return sizeof(float) * std::max(mergeWarps, mergeSplits);
}

int keysPerPass(DType t, int D, int mg, int warps) {
  const int u = (mg >= 8 ? 32 : 64) / (4 * (int)(t == DType::F32 ? 4 : 2));
  return warps * std::max(1, 32 / std::max(1, D / 8)) * u;
}

template <typename T, int MG>
void launchFusedTyped(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  const int G = a.nH / a.nKV;
  dim3 grid(a.maxSplits, a.nKV * ((G + MG - 1) / MG), a.T);
  if (a.splitSize >= keysPerPass(t, a.D, MG, kMaxWarps) && fusedSmemBytes(a, MG, kMaxWarps) <= 48 * 1024)
    launchPdl(pagedAttentionFusedKernel<T, MG, kMaxWarps>, grid, kMaxWarps * 32, fusedSmemBytes(a, MG, kMaxWarps), s, a);
  else
    launchPdl(pagedAttentionFusedKernel<T, MG, kMinWarps>, grid, kMinWarps * 32, fusedSmemBytes(a, MG, kMinWarps), s, a);
}

}  // namespace

int pagedAttentionFusedSplit(DType t, int D, int nH, int nKV, int T, int ctxCap, int numSms) {
  const int perSplit = T * pagedAttentionCountersPerToken(nH, nKV);  // blocks per split index
  auto up = [](int x, int m) { return (x + m - 1) / m * m; };
  if (pagedAttentionTensorCores(t, D)) {
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
  if (pagedAttentionTensorCores(t, D)) return kMmaWarps * kMmaKeys;
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
  if (pagedAttentionTensorCores(t, a.D)) { launchPagedAttentionMma(t, a, s); return; }
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
