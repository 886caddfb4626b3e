// Tensor-core variant of the fused paged attention (f16/bf16, D = 64 or 128): mma.m16n8k16 with the query
// heads of a kv head as the M rows. Block = (split, kv head x up to 8 query heads, token), 8 warps; each warp
// takes 16-key steps of the split with its own online softmax; the end is finishSplit (paged-attention-merge.cuh).
#include <type_traits>

#include "paged-attention-merge.cuh"

namespace pds::cuda {

namespace {

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

template <typename T, int D>
__global__ void __launch_bounds__(kMmaWarps * 32) pagedAttentionMmaKernel(PagedAttnArgs a) {
  pdlWait();
  pdlTrigger();
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

}  // namespace

bool pagedAttentionTensorCores(DType t, int D) { return t != DType::F32 && (D == 64 || D == 128); }

void launchPagedAttentionMma(DType t, const PagedAttnArgs& a, cudaStream_t s) {
  const int G = a.nH / a.nKV;
  dim3 grid(a.maxSplits, a.nKV * ((G + 7) / 8), a.T);
  const size_t smem = sizeof(float) * std::max<size_t>(kMmaWarps * std::min(G, 8) * (a.D + 6), 6 * 32 * kMmaWarps);
  auto go = [&](auto kernel) { launchPdl(kernel, grid, kMmaWarps * 32, smem, s, a); };
  if (t == DType::BF16) {
    if (a.D == 64) go(pagedAttentionMmaKernel<__nv_bfloat16, 64>); else go(pagedAttentionMmaKernel<__nv_bfloat16, 128>);
  } else {
    if (a.D == 64) go(pagedAttentionMmaKernel<__half, 64>); else go(pagedAttentionMmaKernel<__half, 128>);
  }
  checkLaunch("paged_attention_mma");
}

}  // namespace pds::cuda
