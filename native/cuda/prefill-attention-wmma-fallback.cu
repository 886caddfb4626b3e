// The fallback prefill kernel: launchPrefillAttentionWmma, selected with PDSERVE_PREFILL_ATTN=wmma (see
// prefill-attention.cu); the default is prefill-attention-mma.cu. Kept as a simpler second implementation of
// the same contract that the kernel tests and the prefill benchmark compare against.
// Causal prefill attention on tensor cores (WMMA 16x16x16, f16/bf16 in, f32 accumulate), flash-style:
// a block owns 64 query rows of one head (16 per warp) and streams the sequence's keys and values from the
// paged cache in tiles of 64, keeping the running max m and sum l per row (online softmax); each warp keeps
// its Q fragments and O accumulators in registers, S and P pass through shared memory.
// Tiles past the block's last query position are skipped (causal). Shared memory, D = 128: ~61 KB
// (3 blocks per SM).
#include <mma.h>

#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {
using namespace nvcuda;

constexpr int BM = kPrefillTileRows, BN = 64, kPrefillThreads = 128;

template <int D> struct PrefillLayout {
  static constexpr int LDQ = D + 8, LDS = BN + 4, LDP = BN + 8;
  static constexpr size_t align(size_t x) { return (x + 127) & ~size_t(127); }
  // S aliases Q: Q is read into registers before the first tile's barrier, and warp w's S rows
  // cover only bytes of Q rows that every warp has finished reading by then.
  static constexpr size_t q = 0;
  static constexpr size_t s = 0;
  static constexpr size_t k = align(BM * LDQ * 2 > BM * LDS * 4 ? BM * LDQ * 2 : BM * LDS * 4);
  static constexpr size_t v = align(k + BN * LDQ * 2);
  static constexpr size_t p = align(v + BN * LDQ * 2);
  static constexpr size_t m = align(p + BM * LDP * 2);
  static constexpr size_t l = m + BM * 4;
  static constexpr size_t al = l + BM * 4;
  static constexpr size_t bytes = al + BM * 4;
};

template <typename T, int D>
__global__ void __launch_bounds__(kPrefillThreads) prefillAttentionKernel(PrefillAttnArgs a) {
  using L = PrefillLayout<D>;
  extern __shared__ __align__(128) unsigned char sm[];
  T* Qs = (T*)(sm + L::q); T* Ks = (T*)(sm + L::k); T* Vs = (T*)(sm + L::v);
  float* Ss = (float*)(sm + L::s); T* Ps = (T*)(sm + L::p);
  float* mS = (float*)(sm + L::m); float* lS = (float*)(sm + L::l); float* aS = (float*)(sm + L::al);

  const int tile = blockIdx.x, h = blockIdx.y;
  const int seq = a.tiles[2 * tile], q0 = a.tiles[2 * tile + 1];
  const int qsl = a.queryStartLoc[seq], n = a.queryStartLoc[seq + 1] - qsl;
  const int ctx = a.contextLens[seq], base = ctx - n;
  const int rowsValid = min(BM, n - q0);
  const int kvh = h / (a.nH / a.nKV);
  const int32_t* bt = a.blockTables + (size_t)seq * a.btStride;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  constexpr int VPR = D / 8;  // 16-byte vectors per row

  for (int idx = tid; idx < BM * VPR; idx += kPrefillThreads) {
    const int r = idx / VPR, c = (idx % VPR) * 8;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (r < rowsValid) v = *reinterpret_cast<const uint4*>((const T*)a.q + (size_t)(qsl + q0 + r) * a.qStride + (size_t)h * D + c);
    *reinterpret_cast<uint4*>(Qs + r * L::LDQ + c) = v;
  }
  for (int idx = tid; idx < BM; idx += kPrefillThreads) { mS[idx] = -INFINITY; lS[idx] = 0.f; }

  const int kvEnd = min(ctx, base + q0 + rowsValid);
  const T* kc = (const T*)a.kCache;
  const T* vc = (const T*)a.vCache;
  __syncthreads();
  // Q fragments and the output accumulators stay in registers for the whole sweep.
  wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qf[D / 16];
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> oacc[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    wmma::load_matrix_sync(qf[kk], Qs + warp * 16 * L::LDQ + kk * 16, L::LDQ);
    wmma::fill_fragment(oacc[kk], 0.f);
  }
  // Accumulator element i of a lane holds row lane/4 + 8 * ((i >> 1) & 1) of its 16x16 tile (the
  // m16n8k16 C layout that sm_80+ WMMA uses); rows are rescaled through it.
  const int rowLo = lane >> 2;
  for (int kt = 0; kt < kvEnd; kt += BN) {
    __syncthreads();
    for (int idx = tid; idx < BN * VPR; idx += kPrefillThreads) {
      const int r = idx / VPR, c = (idx % VPR) * 8;
      const int j = kt + r;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (j < kvEnd) {
        const size_t slot = (size_t)bt[j / a.blockSize] * a.blockSize + j % a.blockSize;
        const size_t off = (slot * a.nKV + kvh) * D + c;
        kv = *reinterpret_cast<const uint4*>(kc + off);
        vv = *reinterpret_cast<const uint4*>(vc + off);
      }
      *reinterpret_cast<uint4*>(Ks + r * L::LDQ + c) = kv;
      *reinterpret_cast<uint4*>(Vs + r * L::LDQ + c) = vv;
    }
    __syncthreads();

    // S = Q K^T for this warp's 16 rows
#pragma unroll
    for (int nt = 0; nt < BN / 16; ++nt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
        wmma::load_matrix_sync(fb, Ks + nt * 16 * L::LDQ + kk * 16, L::LDQ);
        wmma::mma_sync(acc, qf[kk], fb, acc);
      }
      wmma::store_matrix_sync(Ss + warp * 16 * L::LDS + nt * 16, acc, L::LDS, wmma::mem_row_major);
    }
    __syncwarp();

    // online softmax over the warp's rows
    for (int r = 0; r < 16; ++r) {
      const int row = warp * 16 + r;
      const int pos = base + q0 + row;
      float sv[BN / 32];
      float mx = -INFINITY;
#pragma unroll
      for (int c2 = 0; c2 < BN / 32; ++c2) {
        const int c = lane + 32 * c2, j = kt + c;
        float x = Ss[row * L::LDS + c] * a.scale;
        if (row >= rowsValid || j > pos || j >= kvEnd) x = -INFINITY;
        sv[c2] = x;
        mx = fmaxf(mx, x);
      }
      mx = warpMax(mx);
      const float mOld = mS[row];
      const float mNew = fmaxf(mOld, mx);
      float alpha = 1.f, rs = 0.f;
      if (mNew != -INFINITY) alpha = __expf(mOld - mNew);
#pragma unroll
      for (int c2 = 0; c2 < BN / 32; ++c2) {
        const float p = mNew == -INFINITY ? 0.f : __expf(sv[c2] - mNew);
        const T pt = fromF<T>(p);
        rs += toF(pt);
        Ps[row * L::LDP + lane + 32 * c2] = pt;
      }
      rs = warpSum(rs);
      __syncwarp();
      if (lane == 0) { lS[row] = lS[row] * alpha + rs; mS[row] = mNew; aS[row] = alpha; }
    }
    __syncwarp();

    // O = diag(alpha) O + P V
    const float aLo = aS[warp * 16 + rowLo], aHi = aS[warp * 16 + rowLo + 8];
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf[BN / 16];
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) wmma::load_matrix_sync(pf[kk], Ps + warp * 16 * L::LDP + kk * 16, L::LDP);
#pragma unroll
    for (int dt = 0; dt < D / 16; ++dt) {
#pragma unroll
      for (int i = 0; i < oacc[dt].num_elements; ++i) oacc[dt].x[i] *= ((i >> 1) & 1) ? aHi : aLo;
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fb, Vs + kk * 16 * L::LDQ + dt * 16, L::LDQ);
        wmma::mma_sync(oacc[dt], pf[kk], fb, oacc[dt]);
      }
    }
  }
  // Output straight from the accumulators: element i of a lane is row rowLo + 8 * ((i >> 1) & 1),
  // column 2 * (lane & 3) + (i & 1) + 8 * (i >> 2) of its 16x16 tile.
  const float lLo = lS[warp * 16 + rowLo], lHi = lS[warp * 16 + rowLo + 8];
  const float iLo = lLo > 0.f ? 1.f / lLo : 0.f, iHi = lHi > 0.f ? 1.f / lHi : 0.f;
#pragma unroll
  for (int dt = 0; dt < D / 16; ++dt) {
#pragma unroll
    for (int i = 0; i < oacc[dt].num_elements; ++i) {
      const int hi = (i >> 1) & 1;
      const int row = warp * 16 + rowLo + 8 * hi;
      if (row >= rowsValid) continue;
      const int col = dt * 16 + 2 * (lane & 3) + (i & 1) + 8 * (i >> 2);
      T* out = (T*)a.out + (size_t)(qsl + q0 + row) * a.nH * D + (size_t)h * D;
      out[col] = fromF<T>(oacc[dt].x[i] * (hi ? iHi : iLo));
    }
  }
}

bool prefillAttentionSupported(DType t, int D) { return t != DType::F32 && (D == 64 || D == 128); }

template <typename T, int D>
static void launchPrefillTyped(const PrefillAttnArgs& a, cudaStream_t s) {
  static unsigned devicesSet = 0;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  if (!(devicesSet & (1u << dev))) {
    check(cudaFuncSetAttribute(prefillAttentionKernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)PrefillLayout<D>::bytes),
          "prefill attention: shared memory limit");
    devicesSet |= 1u << dev;
  }
  dim3 grid(a.numTiles, a.nH);
  prefillAttentionKernel<T, D><<<grid, kPrefillThreads, PrefillLayout<D>::bytes, s>>>(a);
}

void launchPrefillAttentionWmma(DType t, const PrefillAttnArgs& a, cudaStream_t s) {
  if (a.numTiles <= 0) return;
  if (!prefillAttentionSupported(t, a.D)) throw std::runtime_error("CUDA backend: prefill attention: unsupported dtype/head_dim");
  if (t == DType::F16) {
    if (a.D == 64) launchPrefillTyped<__half, 64>(a, s); else launchPrefillTyped<__half, 128>(a, s);
  } else {
    if (a.D == 64) launchPrefillTyped<__nv_bfloat16, 64>(a, s); else launchPrefillTyped<__nv_bfloat16, 128>(a, s);
  }
  checkLaunch("prefill_attention");
}

}  // namespace pds::cuda
