// Paged causal attention, width-generic (see simd.h); included by attention.cc (AVX2) and
// attention.avx512.cc. Work item = (sequence, kv head, some query tokens x the q heads sharing that kv head):
// up to QR query rows walk the keys in tiles of VW (never crossing a block). Scores: few rows (decode) take
// dot products straight from the cache; more rows share a K tile converted to f32 and transposed in
// registers, then broadcast-FMAs. Softmax is online (running max m, sum l) in f32; P·V converts each V
// chunk once for all rows.
#pragma once
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "simd.h"

namespace {

using pds::DType;
using pds::cpu::KvLayer;

constexpr int QR = 32;          // query rows per work item (they share each converted K tile)
constexpr int QG = 8;           // rows per score micro-kernel call (register accumulators)
constexpr int kMaxHeadDim = 256;

struct Item {
  int seq, kvHead, tokLo, tCount, headLo, hCount;
};

// Scores s[r] (one vf lane per key of the tile) for R query rows: s[r] = sum_d q[r][d] * kt[d][:].
template <int R>
static inline void scores(const float (*qs)[kMaxHeadDim], const float* kt, int hd, vf* s) {
  vf a[R], b[R];
  for (int r = 0; r < R; r++) a[r] = b[r] = vf{};
  int d = 0;
  for (; d + 2 <= hd; d += 2) {
    vf k0 = *reinterpret_cast<const vf*>(kt + static_cast<size_t>(d) * VW);
    vf k1 = *reinterpret_cast<const vf*>(kt + static_cast<size_t>(d + 1) * VW);
    for (int r = 0; r < R; r++) {
      a[r] += qs[r][d] * k0;
      b[r] += qs[r][d + 1] * k1;
    }
  }
  for (; d < hd; d++) {
    vf k0 = *reinterpret_cast<const vf*>(kt + static_cast<size_t>(d) * VW);
    for (int r = 0; r < R; r++) a[r] += qs[r][d] * k0;
  }
  for (int r = 0; r < R; r++) s[r] = a[r] + b[r];
}

// Scores for few query rows straight from the cache: s[r][t] = q[r] · k_t (dot along head_dim).
template <DType KT, int R>
static inline void scoresDirect(const float (*qs)[kMaxHeadDim], const typename Ld<KT>::E* const* kp, int nk, int hd,
                                vf* s) {
  float sc[R][VW];
  for (int t = 0; t < nk; t++) {
    vf a[R];
    for (int r = 0; r < R; r++) a[r] = vf{};
    int d = 0;
    for (; d + VW <= hd; d += VW) {
      vf kv = Ld<KT>::load(kp[t] + d);
      for (int r = 0; r < R; r++) a[r] += loadu(qs[r] + d) * kv;
    }
    for (int r = 0; r < R; r++) {
      float x = hsum(a[r]);
      for (int dd = d; dd < hd; dd++) x += qs[r][dd] * Ld<KT>::one(kp[t] + dd);
      sc[r][t] = x;
    }
  }
  for (int r = 0; r < R; r++) {
    for (int t = nk; t < VW; t++) sc[r][t] = 0.f;
    s[r] = loadu(sc[r]);
  }
}

// o[0:hd] += sum_t p[t] * v_t   (v rows read from the cache, converted on the fly)
template <DType KT>
static inline void accumulatePV(float* o, const float* p, const typename Ld<KT>::E* const* vp, int cnt, int hd) {
  int d = 0;
  for (; d + VW <= hd; d += VW) {
    vf acc = loadu(o + d);
    for (int t = 0; t < cnt; t++) acc += p[t] * Ld<KT>::load(vp[t] + d);
    storeu(o + d, acc);
  }
  for (; d < hd; d++) {
    float acc = o[d];
    for (int t = 0; t < cnt; t++) acc += p[t] * Ld<KT>::one(vp[t] + d);
    o[d] = acc;
  }
}

// kt[d * VW + t] = k_t[d] for t < nk (0 for t >= nk): VW x VW blocks transposed in registers.
template <DType KT>
static inline void transposeKeys(const typename Ld<KT>::E* const* kp, int nk, int hd, float* kt) {
  if (hd % VW) {
    for (int t = 0; t < VW; t++)
      for (int d = 0; d < hd; d++) kt[d * VW + t] = t < nk ? Ld<KT>::one(kp[t] + d) : 0.f;
    return;
  }
  for (int d0 = 0; d0 < hd; d0 += VW) {
#if defined(__AVX512F__)
    __m512 a[16], t[16], u[16], v[16];
    for (int i = 0; i < 16; i++) a[i] = i < nk ? (__m512)Ld<KT>::load(kp[i] + d0) : _mm512_setzero_ps();
    for (int i = 0; i < 8; i++) {
      t[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {  // u[4i+j], lane k: column 4k+j of rows 4i..4i+3
      __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
      __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
      u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
      u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
      u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
      u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int j = 0; j < 4; j++) {
      v[j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
      v[j + 4] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
      v[j + 8] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
      v[j + 12] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    }
    float* o = kt + static_cast<size_t>(d0) * 16;
    for (int j = 0; j < 4; j++) {
      _mm512_store_ps(o + (j) * 16, _mm512_shuffle_f32x4(v[j], v[j + 8], 0x88));
      _mm512_store_ps(o + (j + 8) * 16, _mm512_shuffle_f32x4(v[j], v[j + 8], 0xdd));
      _mm512_store_ps(o + (j + 4) * 16, _mm512_shuffle_f32x4(v[j + 4], v[j + 12], 0x88));
      _mm512_store_ps(o + (j + 12) * 16, _mm512_shuffle_f32x4(v[j + 4], v[j + 12], 0xdd));
    }
#else
    __m256 a[8], t[8], u[8];
    for (int i = 0; i < 8; i++) a[i] = i < nk ? (__m256)Ld<KT>::load(kp[i] + d0) : _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      t[2 * i] = _mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
      u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
      u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
      u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
      u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    float* o = kt + static_cast<size_t>(d0) * 8;
    for (int j = 0; j < 4; j++) {
      _mm256_store_ps(o + j * 8, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20));
      _mm256_store_ps(o + (j + 4) * 8, _mm256_permute2f128_ps(u[j], u[4 + j], 0x31));
    }
#endif
  }
}

template <DType KT>
static void attnItem(const Item& it, const float* q, int ldq, float* out, int ldo, int numHeads, const KvLayer& kv,
                     const pds::cpu::AttnBatch& b) {
  const int hd = kv.headDim, bs = kv.blockSize, kvh = kv.kvHeads;
  const int rowStart = b.queryStartLoc[it.seq];
  const int n = b.queryStartLoc[it.seq + 1] - rowStart;
  const int ctx = b.contextLens[it.seq];
  const int32_t* table = b.blockTables + static_cast<size_t>(it.seq) * b.maxBlocksPerSeq;
  const int R = it.tCount * it.hCount;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  alignas(64) float qs[QR][kMaxHeadDim];
  alignas(64) float o[QR][kMaxHeadDim];
  alignas(64) float kt[kMaxHeadDim * VW];
  using E = typename Ld<KT>::E;
  const E* kp[VW];
  const E* vp[VW];
  const E* K = static_cast<const E*>(kv.k);
  const E* V = static_cast<const E*>(kv.v);
  float m[QR], l[QR];
  int pos[QR];
  for (int r = 0; r < R; r++) {
    int ti = r / it.hCount, hi = r % it.hCount;
    const float* qr = q + static_cast<size_t>(rowStart + it.tokLo + ti) * ldq + static_cast<size_t>(it.headLo + hi) * hd;
    for (int d = 0; d < hd; d++) qs[r][d] = qr[d] * scale, o[r][d] = 0.f;
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.f;
    pos[r] = ctx - n + it.tokLo + ti;
  }
  const int maxPos = ctx - n + it.tokLo + it.tCount - 1;
  vf iota;
  for (int i = 0; i < VW; i++) iota[i] = static_cast<float>(i);
  const vf ninf = vf{} - std::numeric_limits<float>::infinity();

  for (int j0 = 0; j0 <= maxPos;) {
    const int blk = j0 / bs, off = j0 % bs;
    int nk = bs - off;
    if (nk > VW) nk = VW;
    if (nk > maxPos + 1 - j0) nk = maxPos + 1 - j0;
    const int phys = table[blk];
    if (phys < 0 || phys >= kv.numBlocks)
      throw std::out_of_range("block table entry " + std::to_string(phys) + " of sequence " + std::to_string(it.seq) +
                              " is outside the KV cache (" + std::to_string(kv.numBlocks) + " blocks)");
    for (int t = 0; t < nk; t++) {
      size_t e = ((static_cast<size_t>(phys) * bs + off + t) * kvh + it.kvHead) * hd;
      kp[t] = K + e;
      vp[t] = V + e;
    }
    vf s[QR];
    if (R <= 4) {  // decode: dot products straight from the cache (few rows)
      switch (R) {
        case 1: scoresDirect<KT, 1>(qs, kp, nk, hd, s); break;
        case 2: scoresDirect<KT, 2>(qs, kp, nk, hd, s); break;
        case 3: scoresDirect<KT, 3>(qs, kp, nk, hd, s); break;
        default: scoresDirect<KT, 4>(qs, kp, nk, hd, s); break;
      }
    } else {  // several rows share the tile: transpose K once, then broadcast-FMAs
      transposeKeys<KT>(kp, nk, hd, kt);
      for (int g = 0; g < R; g += QG) {
        switch (R - g < QG ? R - g : QG) {
          case 1: scores<1>(qs + g, kt, hd, s + g); break;
          case 2: scores<2>(qs + g, kt, hd, s + g); break;
          case 3: scores<3>(qs + g, kt, hd, s + g); break;
          case 4: scores<4>(qs + g, kt, hd, s + g); break;
          case 5: scores<5>(qs + g, kt, hd, s + g); break;
          case 6: scores<6>(qs + g, kt, hd, s + g); break;
          case 7: scores<7>(qs + g, kt, hd, s + g); break;
          default: scores<8>(qs + g, kt, hd, s + g); break;
        }
      }
    }
    // Online softmax per row: P[r] = exp(s - new max) over its visible keys (0 elsewhere), corr[r] rescales o.
    alignas(64) float P[QR][VW];
    float corr[QR];
    for (int r = 0; r < R; r++) {
      int cnt = pos[r] - j0 + 1;
      if (cnt > nk) cnt = nk;
      if (cnt <= 0) {
        storeu(P[r], vf{});
        corr[r] = 1.f;
        continue;
      }
      vf sr = iota < static_cast<float>(cnt) ? s[r] : ninf;
      float mx = m[r];
      for (int t = 0; t < cnt; t++) mx = sr[t] > mx ? sr[t] : mx;
      corr[r] = std::exp(m[r] - mx);
      vf p = vexp(sr - mx);
      p = iota < static_cast<float>(cnt) ? p : vf{};
      l[r] = l[r] * corr[r] + hsum(p);
      m[r] = mx;
      storeu(P[r], p);
    }
    if (hd % VW == 0) {
      // o[r] = o[r] * corr[r] + P[r] · V: each V chunk is converted once and shared by all rows.
      for (int d = 0; d < hd; d += VW) {
        vf vv[VW];
        for (int t = 0; t < VW; t++) vv[t] = t < nk ? Ld<KT>::load(vp[t] + d) : vf{};
        for (int r = 0; r < R; r++) {
          vf acc = loadu(o[r] + d) * corr[r];
          for (int t = 0; t < VW; t++) acc += P[r][t] * vv[t];
          storeu(o[r] + d, acc);
        }
      }
    } else {
      for (int r = 0; r < R; r++) {
        if (corr[r] != 1.0f)
          for (int d = 0; d < hd; d++) o[r][d] *= corr[r];
        accumulatePV<KT>(o[r], P[r], vp, nk, hd);
      }
    }
    j0 += nk;
  }
  for (int r = 0; r < R; r++) {
    int ti = r / it.hCount, hi = r % it.hCount;
    float* dst = out + static_cast<size_t>(rowStart + it.tokLo + ti) * ldo + static_cast<size_t>(it.headLo + hi) * hd;
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.f;
    for (int d = 0; d < hd; d++) dst[d] = o[r][d] * inv;
  }
}

static void attentionDispatch(pds::cpu::ThreadPool& pool, const float* q, int ldq, int numHeads, const KvLayer& kv,
                              const pds::cpu::AttnBatch& b, float* out, int ldo) {
  if (kv.headDim > kMaxHeadDim) throw std::invalid_argument("head_dim > 256 is not supported by the CPU attention");
  const int G = numHeads / kv.kvHeads;
  const int hg = G < QG ? G : QG;
  const int tb = QR / hg;
  std::vector<Item> items;
  for (int s = 0; s < b.numSeqs; s++) {
    const int n = b.queryStartLoc[s + 1] - b.queryStartLoc[s];
    const int ctx = b.contextLens[s];
    if (n <= 0) continue;
    if (n > ctx) throw std::invalid_argument("sequence " + std::to_string(s) + " has more new tokens than its context");
    if ((ctx + kv.blockSize - 1) / kv.blockSize > b.maxBlocksPerSeq)
      throw std::invalid_argument("sequence " + std::to_string(s) + " context exceeds its block table");
    for (int kh = 0; kh < kv.kvHeads; kh++)
      for (int h0 = 0; h0 < G; h0 += hg)
        for (int t0 = 0; t0 < n; t0 += tb)
          items.push_back(Item{s, kh, t0, n - t0 < tb ? n - t0 : tb, kh * G + h0, G - h0 < hg ? G - h0 : hg});
  }
  // Longest items (latest tokens) first for better load balance.
  pool.parallelFor(static_cast<int64_t>(items.size()), [&](int64_t i) {
    const Item& it = items[items.size() - 1 - i];
    switch (kv.dtype) {
      case DType::F32: return attnItem<DType::F32>(it, q, ldq, out, ldo, numHeads, kv, b);
      case DType::BF16: return attnItem<DType::BF16>(it, q, ldq, out, ldo, numHeads, kv, b);
      case DType::F16: return attnItem<DType::F16>(it, q, ldq, out, ldo, numHeads, kv, b);
    }
  });
}

}  // namespace
