// Causal prefill attention, FlashAttention-2 style on mma.sync m16n8k16 (f16/bf16 in, f32 accumulate), the
// default behind launchPrefillAttention. Same contract as the WMMA fallback kernel (PrefillAttnArgs, kernels.h).
// Block = 64 query rows (4 warps x 16 rows, 128 threads) of 1 query head, or of 2 heads sharing a kv head.
// The sequence's keys and values stream from the paged cache in 64-key tiles through a two-stage cp.async
// ring in shared memory (tile t+1 loads while tile t is computed). Each warp keeps S/P and O accumulators in
// registers (and Q fragments, with 1 head): P feeds the P V product straight from S's accumulator layout (no
// shared-memory round trip); fragments come from shared memory through ldmatrix (K non-transposed, V
// transposed). Online softmax in base 2 (scale * log2 e folded into one FMA); P is rounded once to T and
// the row sums add the rounded values (as the WMMA fallback).
// Causal: a block stops at its last query position; a warp skips tiles past its own last row and masks only
// the diagonal / ragged tiles. Work order: see the kernel.
// Shared memory (row pitch D + 8 halves keeps ldmatrix rows on distinct banks), D = 128: Q 17 KB per head +
// 2 stages x (K + V) 70 KB = 87 / 104 KB (2 blocks per SM); D = 64: 46 / 55 KB.
#include <type_traits>

#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {
namespace {

constexpr int kRows = kPrefillTileRows, kKeys = 64, kThreads = 128;

template <int D, int HPW> struct MmaSmem {
  static constexpr int LD = D + 8;                 // elements per shared row
  static constexpr int q = 0;                      // [HPW][kRows][LD]
  static constexpr int tile = kKeys * LD;          // one K or V tile
  static constexpr int kv = HPW * kRows * LD;      // stage s: K at kv + 2 s tile, V at kv + (2 s + 1) tile
  static constexpr size_t bytes = (size_t)(kv + 4 * tile) * 2;
};

__device__ __forceinline__ uint32_t smemAddr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }
// 16-byte async copy global -> shared; with valid false the 16 bytes are zero-filled and nothing is read.
__device__ __forceinline__ void cpAsync16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cpAsyncWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm4(uint32_t addr, uint32_t* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldsm4t(uint32_t addr, uint32_t* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// c[0..3] += A (16x16, regs a[0..3]) * B (16x8, regs b0 b1). Layouts (lane = 4 g + q):
//   A: a0 (g, 2q..2q+1) a1 (g+8, ..) a2 (g, 2q+8..) a3 (g+8, 2q+8..); B: b0 (k 2q..2q+1, n g) b1 (k 2q+8.., n g);
//   C: c0 c1 (g, 2q..2q+1), c2 c3 (g+8, ..).
template <typename T> __device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float ex2(float x) {  // 2^x; -inf -> 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Packs (x, y) as two T (x in the low half); xr, yr get the rounded values back as float.
template <typename T> __device__ __forceinline__ uint32_t packRound(float x, float y, float& xr, float& yr) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(x, y);
    xr = __low2float(v); yr = __high2float(v);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(x, y);
    xr = __low2float(v); yr = __high2float(v);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

template <typename T> __device__ __forceinline__ uint32_t pack2(float x, float y) {
  float a, b;
  return packRound<T>(x, y, a, b);
}

// HPW = query heads per block (1, or 2 of one kv head): with 2, every K / V fragment read from shared
// memory feeds both heads' MMAs (half the ldmatrix traffic per MMA) and Q fragments are re-read from shared
// memory per tile instead of held in registers.
// Work order: block w (linear id) takes item k of the list of (tile, head group) sorted by tile, last tile
// (most keys) first: k = w, or with zigzag the second half of the ids reads the list from its light end
// (a single-wave grid then pairs heavy and light blocks instead of piling the heaviest ones up together).
template <typename T, int D, int HPW>
__global__ void __launch_bounds__(kThreads, 2) prefillAttentionMmaKernel(PrefillAttnArgs a, int zigzag) {
  using L = MmaSmem<D, HPW>;
  constexpr int CPR = D / 8;                     // 16-byte chunks per row
  constexpr int RPT = kKeys * CPR / kThreads;   // consecutive rows one thread copies per K or V tile
  constexpr bool kQRegs = HPW == 1;
  extern __shared__ __align__(128) unsigned char smRaw[];
  T* sm = reinterpret_cast<T*>(smRaw);

  const int B = gridDim.x * gridDim.y, w = blockIdx.y * gridDim.x + blockIdx.x, half = (B + 1) / 2;
  const int k = zigzag && w >= half ? B - 1 - (w - half) : w;
  const int h0 = (int)(k % gridDim.x) * HPW, tile = gridDim.y - 1 - (int)(k / gridDim.x);
  const int seq = a.tiles[2 * tile], q0 = a.tiles[2 * tile + 1];
  const int qsl = a.queryStartLoc[seq], n = a.queryStartLoc[seq + 1] - qsl;
  const int ctx = a.contextLens[seq], base = ctx - n;
  const int rowsValid = min(kRows, n - q0);
  const int kvh = h0 / (a.nH / a.nKV);
  const int32_t* bt = a.blockTables + (size_t)seq * a.btStride;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;
  const int kvEnd = min(ctx, base + q0 + rowsValid);
  const int nTiles = (kvEnd + kKeys - 1) / kKeys;
  const int bs = a.blockSize, bsShift = __ffs(bs) - 1;
  const bool bsPow2 = bs == 1 << bsShift;

  // Q rows past rowsValid are zero (their scores stay finite; they are never written).
  for (int idx = tid; idx < HPW * kRows * CPR; idx += kThreads) {
    const int r = idx / CPR % kRows, hh = idx / (CPR * kRows), c = (idx % CPR) * 8;
    const bool ok = r < rowsValid;
    const T* src = (const T*)a.q + (size_t)(qsl + q0 + (ok ? r : 0)) * a.qStride + (size_t)(h0 + hh) * D + c;
    cpAsync16(smemAddr(sm + L::q + (hh * kRows + r) * L::LD + c), src, ok);
  }
  // This thread copies chunk c0 of rows rBase .. rBase + RPT - 1 of each K / V tile. When the cache block
  // size is a multiple of RPT those rows lie in one cache block, whose table entry is read one tile ahead
  // (blkNext), so the copies never wait on a table load; otherwise each row reads its entry when copied.
  const int rBase = (tid / CPR) * RPT, c0 = (tid % CPR) * 8;
  const bool runs = bs % RPT == 0;
  auto blockOf = [&](int j) { return __ldg(bt + (bsPow2 ? j >> bsShift : j / bs)); };
  auto withinBlock = [&](int j) { return bsPow2 ? j & (bs - 1) : j - j / bs * bs; };
  int blkNext = 0;
  auto readTable = [&](int t) {
    const int j = t * kKeys + rBase;
    blkNext = runs && j < kvEnd ? blockOf(j) : 0;
  };
  // Keys past kvEnd are zero-filled (a masked score times a zero V row stays 0, not NaN).
  auto loadTile = [&](int t, int stage) {
    T* ks = sm + L::kv + 2 * stage * L::tile;
    const int j0 = t * kKeys + rBase;
    const size_t run0 = (size_t)blkNext * bs + withinBlock(j0);
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int j = j0 + i;
      const bool ok = j < kvEnd;
      size_t off = 0;
      if (ok) off = (((runs ? run0 + i : (size_t)blockOf(j) * bs + withinBlock(j))) * a.nKV + kvh) * D + c0;
      cpAsync16(smemAddr(ks + (rBase + i) * L::LD + c0), kc + off, ok);
      cpAsync16(smemAddr(ks + L::tile + (rBase + i) * L::LD + c0), vc + off, ok);
    }
  };
  if (nTiles > 0) { readTable(0); loadTile(0, 0); }
  cpAsyncCommit();
  if (nTiles > 1) readTable(1);

  const int g = lane >> 2, qd = lane & 3;
  const int rowBase = warp * 16;
  const bool warpActive = rowBase < rowsValid;
  const int posMin = base + q0 + rowBase;                             // warp's first query position
  const int posMax = base + q0 + min(rowBase + 15, rowsValid - 1);    // and its last valid one
  const int posLo = posMin + g, posHi = posLo + 8;                     // this lane's two rows
  const float sl2 = a.scale * 1.4426950408889634f;

  uint32_t qf[kQRegs ? D / 16 : 1][4];
  float o[HPW][D / 8][4];
  float mLo[HPW], mHi[HPW], lLo[HPW], lHi[HPW];
#pragma unroll
  for (int hh = 0; hh < HPW; ++hh) {
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o[hh][i][0] = o[hh][i][1] = o[hh][i][2] = o[hh][i][3] = 0.f;
    mLo[hh] = mHi[hh] = -INFINITY;
    lLo[hh] = lHi[hh] = 0.f;
  }

  // ldmatrix lane addresses (elements): Q / A operand rows lane % 16, column half lane / 16;
  // K (B of Q K^T, two n-tiles per x4): key (lane & 7) + 8 (lane >> 4), d half (lane >> 3) & 1;
  // V (B of P V, transposed, two d-tiles per x4): key (lane & 7) + 8 ((lane >> 3) & 1), d half lane >> 4.
  const int qOff = (rowBase + (lane & 15)) * L::LD + (lane >> 4) * 8;
  const int kOff = ((lane & 7) + 8 * (lane >> 4)) * L::LD + ((lane >> 3) & 1) * 8;
  const int vOff = ((lane & 7) + 8 * ((lane >> 3) & 1)) * L::LD + (lane >> 4) * 8;

  for (int t = 0; t < nTiles; ++t) {
    if (t + 1 < nTiles) {
      loadTile(t + 1, (t + 1) & 1);
      if (t + 2 < nTiles) readTable(t + 2);
    }
    cpAsyncCommit();
    cpAsyncWait<1>();
    __syncthreads();
    if (kQRegs && t == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) ldsm4(smemAddr(sm + L::q + qOff + kk * 16), qf[kQRegs ? kk : 0]);
    }
    const int kt = t * kKeys;
    if (warpActive && kt <= posMax) {
      const T* ks = sm + L::kv + 2 * (t & 1) * L::tile;
      const T* vs = ks + L::tile;
      float s[HPW][kKeys / 8][4];
#pragma unroll
      for (int hh = 0; hh < HPW; ++hh)
#pragma unroll
        for (int i = 0; i < kKeys / 8; ++i) s[hh][i][0] = s[hh][i][1] = s[hh][i][2] = s[hh][i][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t qa[HPW][4];
#pragma unroll
        for (int hh = 0; hh < HPW; ++hh) {
          if constexpr (kQRegs) {
#pragma unroll
            for (int e = 0; e < 4; ++e) qa[hh][e] = qf[kk][e];
          } else {
            ldsm4(smemAddr(sm + L::q + hh * kRows * L::LD + qOff + kk * 16), qa[hh]);
          }
        }
#pragma unroll
        for (int np = 0; np < kKeys / 16; ++np) {
          uint32_t b[4];
          ldsm4(smemAddr(ks + kOff + np * 16 * L::LD + kk * 16), b);
#pragma unroll
          for (int hh = 0; hh < HPW; ++hh) {
            mma16816<T>(s[hh][2 * np], qa[hh], b[0], b[1]);
            mma16816<T>(s[hh][2 * np + 1], qa[hh], b[2], b[3]);
          }
        }
      }
      const bool mask = kt + kKeys - 1 > posMin || kt + kKeys > kvEnd;
      uint32_t p[HPW][kKeys / 8][2];
#pragma unroll
      for (int hh = 0; hh < HPW; ++hh) {
        if (mask) {
#pragma unroll
          for (int nt = 0; nt < kKeys / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int j = kt + 8 * nt + 2 * qd + (e & 1);
              if (j > (e < 2 ? posLo : posHi) || j >= kvEnd) s[hh][nt][e] = -INFINITY;
            }
        }
        float mxLo = -INFINITY, mxHi = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kKeys / 8; ++nt) {
          mxLo = fmaxf(mxLo, fmaxf(s[hh][nt][0], s[hh][nt][1]));
          mxHi = fmaxf(mxHi, fmaxf(s[hh][nt][2], s[hh][nt][3]));
        }
#pragma unroll
        for (int x = 1; x <= 2; x <<= 1) {
          mxLo = fmaxf(mxLo, __shfl_xor_sync(0xffffffffu, mxLo, x));
          mxHi = fmaxf(mxHi, __shfl_xor_sync(0xffffffffu, mxHi, x));
        }
        const float nLo = fmaxf(mLo[hh], mxLo * sl2), nHi = fmaxf(mHi[hh], mxHi * sl2);
        const float rLo = nLo == -INFINITY ? 0.f : nLo, rHi = nHi == -INFINITY ? 0.f : nHi;
        const float aLo = ex2(mLo[hh] - rLo), aHi = ex2(mHi[hh] - rHi);
        mLo[hh] = nLo; mHi[hh] = nHi;
        float sumLo = 0.f, sumHi = 0.f;
#pragma unroll
        for (int nt = 0; nt < kKeys / 8; ++nt) {
          float r0f, r1f, r2f, r3f;
          p[hh][nt][0] = packRound<T>(ex2(fmaf(s[hh][nt][0], sl2, -rLo)), ex2(fmaf(s[hh][nt][1], sl2, -rLo)), r0f, r1f);
          p[hh][nt][1] = packRound<T>(ex2(fmaf(s[hh][nt][2], sl2, -rHi)), ex2(fmaf(s[hh][nt][3], sl2, -rHi)), r2f, r3f);
          sumLo += r0f + r1f;
          sumHi += r2f + r3f;
        }
        lLo[hh] = lLo[hh] * aLo + sumLo;
        lHi[hh] = lHi[hh] * aHi + sumHi;
#pragma unroll
        for (int i = 0; i < D / 8; ++i) { o[hh][i][0] *= aLo; o[hh][i][1] *= aLo; o[hh][i][2] *= aHi; o[hh][i][3] *= aHi; }
      }
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        uint32_t pa[HPW][4];
#pragma unroll
        for (int hh = 0; hh < HPW; ++hh) {
          pa[hh][0] = p[hh][2 * kk][0]; pa[hh][1] = p[hh][2 * kk][1];
          pa[hh][2] = p[hh][2 * kk + 1][0]; pa[hh][3] = p[hh][2 * kk + 1][1];
        }
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          uint32_t b[4];
          ldsm4t(smemAddr(vs + vOff + kk * 16 * L::LD + dp * 16), b);
#pragma unroll
          for (int hh = 0; hh < HPW; ++hh) {
            mma16816<T>(o[hh][2 * dp], pa[hh], b[0], b[1]);
            mma16816<T>(o[hh][2 * dp + 1], pa[hh], b[2], b[3]);
          }
        }
      }
    }
    __syncthreads();  // the next iteration refills this stage
  }
  cpAsyncWait<0>();

  const int rLo = rowBase + g, rHi = rLo + 8;
  const size_t pitch = (size_t)a.nH * D;
#pragma unroll
  for (int hh = 0; hh < HPW; ++hh) {
    float sLo = lLo[hh], sHi = lHi[hh];
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
      sLo += __shfl_xor_sync(0xffffffffu, sLo, x);
      sHi += __shfl_xor_sync(0xffffffffu, sHi, x);
    }
    const float iLo = sLo > 0.f ? 1.f / sLo : 0.f, iHi = sHi > 0.f ? 1.f / sHi : 0.f;
    T* outBase = (T*)a.out + (size_t)(h0 + hh) * D + 2 * qd;
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      if (rLo < rowsValid)
        *reinterpret_cast<uint32_t*>(outBase + (size_t)(qsl + q0 + rLo) * pitch + 8 * i) =
            pack2<T>(o[hh][i][0] * iLo, o[hh][i][1] * iLo);
      if (rHi < rowsValid)
        *reinterpret_cast<uint32_t*>(outBase + (size_t)(qsl + q0 + rHi) * pitch + 8 * i) =
            pack2<T>(o[hh][i][2] * iHi, o[hh][i][3] * iHi);
    }
  }
}

// order: 0 heavy first, 1 zigzag, < 0 zigzag when the whole grid fits on the device at once.
template <typename T, int D, int HPW> void launchTyped(const PrefillAttnArgs& a, int order, cudaStream_t s) {
  static unsigned devicesSet = 0;
  static int slots[32];  // resident blocks per device
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev >= 32) throw std::runtime_error("CUDA backend: prefill attention: device index >= 32");
  if (!(devicesSet & (1u << dev))) {
    check(cudaFuncSetAttribute(prefillAttentionMmaKernel<T, D, HPW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)MmaSmem<D, HPW>::bytes),
          "prefill attention (mma): shared memory limit");
    int perSm = 0, sms = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, prefillAttentionMmaKernel<T, D, HPW>, kThreads,
                                                        MmaSmem<D, HPW>::bytes),
          "prefill attention (mma): occupancy");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    slots[dev] = perSm * sms;
    devicesSet |= 1u << dev;
  }
  dim3 grid(a.nH / HPW, a.numTiles);
  const int zigzag = order < 0 ? (int)(grid.x * grid.y) <= slots[dev] : order;
  prefillAttentionMmaKernel<T, D, HPW><<<grid, kThreads, MmaSmem<D, HPW>::bytes, s>>>(a, zigzag);
}

template <typename T> void launchHeads(const PrefillAttnArgs& a, int hpw, int order, cudaStream_t s) {
  if (a.D == 64) {
    if (hpw == 2) launchTyped<T, 64, 2>(a, order, s); else launchTyped<T, 64, 1>(a, order, s);
  } else {
    if (hpw == 2) launchTyped<T, 128, 2>(a, order, s); else launchTyped<T, 128, 1>(a, order, s);
  }
}

}  // namespace

void launchPrefillAttentionMma(DType t, const PrefillAttnArgs& a, cudaStream_t s, int headsPerBlock, int order) {
  if (a.numTiles <= 0) return;
  if (!prefillAttentionSupported(t, a.D)) throw std::runtime_error("CUDA backend: prefill attention: unsupported dtype/head_dim");
  if (a.numTiles > 65535) throw std::runtime_error("CUDA backend: prefill attention: more than 65535 row tiles");
  const int G = a.nH / a.nKV;
  const int hpw = headsPerBlock == 1 || G % 2 != 0 ? 1 : 2;
  if (t == DType::F16) launchHeads<__half>(a, hpw, order, s); else launchHeads<__nv_bfloat16>(a, hpw, order, s);
  checkLaunch("prefill_attention_mma");
}

}  // namespace pds::cuda
