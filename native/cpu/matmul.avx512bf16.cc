// y[M,N] (+)= x[M,K] · W[N,K]^T for bf16 W with AVX512-BF16 (vdpbf16ps: 32 bf16 products per instruction,
// f32 accumulation). Compiled with -mavx512bf16; matmul() calls it only when the CPU has it (matmul.cc).
// x is f32. Two precisions (Bf16Dot):
//  - Split (the default): each x row becomes hi + lo bf16 rows (hi = bf16(x), lo = bf16(x - hi)), two vdpbf16ps
//    per W vector: x is carried to ~2^-17 relative, so results match the exact f32-activation kernels to f32
//    rounding noise (the HF fixture parity holds); W is never converted.
//  - Round: x rounded to bf16 once (what llama.cpp does with bf16 weights): one vdpbf16ps per W vector, about
//    twice the prefill speed, products off by up to 2^-9 relative (breaks the fp32-reference parity tests).
//  - M <= DECODE_MAX (decode): dot-product tiles over natural W rows; every W row streams from memory once for
//    the whole batch (one 64-byte line per row per 32 k), the next tile's rows prefetched.
//  - larger M (prefill, big batches): W is packed per (KC x NP) panel into the VNNI pair layout
//    [16-column block][k pair][16 columns][2] (once per panel, reused by every row group), and an RB x 32
//    register tile accumulates outer products of broadcast x pairs with packed W; the x row group (KC pairs)
//    stays in L1 while the panel (NP x KC bf16) stays in L2.
// Threads take contiguous N ranges (multiples of 32 columns), so each streams its own part of W and writes its
// own columns of y (no shared cache lines but the range edges).
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host-buffer.h"
#include "matmul-isa.h"

namespace {

constexpr int DECODE_MAX = 8;
constexpr int KC = 512;  // K panel (bf16 elements; KC/2 pairs)
constexpr int NP = 64;   // W rows (y columns) per packed panel: 4 blocks of 16
constexpr int RB = 12;   // x rows per GEMM register tile (12 x 2 accumulators)

template <int R>
constexpr int noFor() { return R == 1 ? 8 : R == 2 ? 6 : R <= 4 ? 4 : 3; }

inline uint32_t tailMask32(int n) { return n >= 32 ? 0xffffffffu : (1u << n) - 1; }

// x[M, K] f32 -> xb[M, Kp] bf16 (Kp = K rounded up to 32, zero-padded) and, when xl is not null, the
// residuals xl = bf16(x - xb) in the same shape.
void toBf16Rows(const float* x, int M, int K, uint16_t* xb, uint16_t* xl, int Kp) {
  for (int m = 0; m < M; m++) {
    const float* s = x + static_cast<size_t>(m) * K;
    uint16_t* d = xb + static_cast<size_t>(m) * Kp;
    for (int k = 0; k < Kp; k += 32) {
      const int n = K - k;
      const __mmask16 lo = static_cast<__mmask16>(tailMask32(n > 0 ? n : 0)),
                      hi = static_cast<__mmask16>(tailMask32(n > 16 ? n - 16 : 0));
      __m512 a = _mm512_maskz_loadu_ps(lo, s + k), b = _mm512_maskz_loadu_ps(hi, s + k + 16);
      __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a);
      _mm512_storeu_si512(d + k, h);
      if (xl) {  // hi back to f32 (bf16 << 16), residuals rounded to bf16
        __m512 ah = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
        __m512 bh = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
        _mm512_storeu_si512(xl + static_cast<size_t>(m) * Kp + k,
                            (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(b, bh), _mm512_sub_ps(a, ah)));
      }
    }
  }
}

// Decode tile: y[r*ldy + o] (+)= (xb[r] (+ xl[r] if S)) · W[o] for r < R, o < NO; x rows zero-padded to a
// multiple of 32; xl = xb + xlOff.
template <int NO, int R, bool S>
inline void dotTile(const uint16_t* xb, size_t xlOff, int ldx, const uint16_t* w, int K, float* y, int ldy, bool accum) {
  __m512 a[NO][R];
  for (int o = 0; o < NO; o++)
    for (int r = 0; r < R; r++) a[o][r] = _mm512_setzero_ps();
  int k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512i wv[NO];
    for (int o = 0; o < NO; o++) __builtin_prefetch(w + static_cast<size_t>(o + NO) * K + k);
    for (int o = 0; o < NO; o++) wv[o] = _mm512_loadu_si512(w + static_cast<size_t>(o) * K + k);
    for (int r = 0; r < R; r++) {
      __m512i xv = _mm512_loadu_si512(xb + static_cast<size_t>(r) * ldx + k);
      for (int o = 0; o < NO; o++) a[o][r] = _mm512_dpbf16_ps(a[o][r], (__m512bh)xv, (__m512bh)wv[o]);
      if (S) {
        __m512i lv = _mm512_loadu_si512(xb + xlOff + static_cast<size_t>(r) * ldx + k);
        for (int o = 0; o < NO; o++) a[o][r] = _mm512_dpbf16_ps(a[o][r], (__m512bh)lv, (__m512bh)wv[o]);
      }
    }
  }
  if (k < K) {  // K tail: masked W loads (zeros past K; x is zero-padded there)
    const __mmask32 m = tailMask32(K - k);
    __m512i wv[NO];
    for (int o = 0; o < NO; o++) wv[o] = _mm512_maskz_loadu_epi16(m, w + static_cast<size_t>(o) * K + k);
    for (int r = 0; r < R; r++) {
      __m512i xv = _mm512_loadu_si512(xb + static_cast<size_t>(r) * ldx + k);
      for (int o = 0; o < NO; o++) a[o][r] = _mm512_dpbf16_ps(a[o][r], (__m512bh)xv, (__m512bh)wv[o]);
      if (S) {
        __m512i lv = _mm512_loadu_si512(xb + xlOff + static_cast<size_t>(r) * ldx + k);
        for (int o = 0; o < NO; o++) a[o][r] = _mm512_dpbf16_ps(a[o][r], (__m512bh)lv, (__m512bh)wv[o]);
      }
    }
  }
  for (int o = 0; o < NO; o++)
    for (int r = 0; r < R; r++) {
      float s = _mm512_reduce_add_ps(a[o][r]);
      float* d = y + static_cast<size_t>(r) * ldy + o;
      *d = accum ? *d + s : s;
    }
}

template <int R, bool S>
void decodeRows(const uint16_t* xb, size_t xlOff, int ldx, const uint16_t* W, int K, float* y, int ldy, int64_t rows, bool accum) {
  constexpr int NO = noFor<R>();
  int64_t o = 0;
  for (; o + NO <= rows; o += NO) dotTile<NO, R, S>(xb, xlOff, ldx, W + o * K, K, y + o, ldy, accum);
  for (; o < rows; o++) dotTile<1, R, S>(xb, xlOff, ldx, W + o * K, K, y + o, ldy, accum);
}

template <bool S>
void decodeAny(int m, const uint16_t* xb, size_t xlOff, int ldx, const uint16_t* W, int K, float* y, int ldy, int64_t rows, bool accum) {
  switch (m) {
    case 1: return decodeRows<1, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    case 2: return decodeRows<2, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    case 3: return decodeRows<3, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    case 4: return decodeRows<4, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    case 5: return decodeRows<5, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    case 6: return decodeRows<6, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    case 7: return decodeRows<7, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    case 8: return decodeRows<8, S>(xb, xlOff, ldx, W, K, y, ldy, rows, accum);
    default: return;
  }
}

// In-register transpose of a 16 x 16 matrix of 32-bit elements (r[i] = row i in, column i out).
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int h = 0; h < 2; h++)
    for (int j = 0; j < 4; j++) {
      t[8 * h + j] = _mm512_shuffle_i32x4(r[8 * h + j], r[8 * h + 4 + j], 0x88);
      t[8 * h + 4 + j] = _mm512_shuffle_i32x4(r[8 * h + j], r[8 * h + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; j++) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(t[j], t[8 + j], 0xdd);
  }
}

// Packs W[n0 : n0+rows, k0 : k0+kLen] (rows <= NP, row stride K) into pk[block][pair][16][2]; columns past
// `rows` and k past kLen are zero. pairs = ceil(kLen / 2). Full 16-row x 16-pair squares go through
// transpose16, the edges element by element.
void packPanel(const uint16_t* W, int K, int64_t n0, int rows, int k0, int kLen, int pairs, uint32_t* pk) {
  const int blocks = (rows + 15) / 16, full = kLen / 2;
  for (int b = 0; b < blocks; b++) {
    uint32_t* dst = pk + static_cast<size_t>(b) * pairs * 16;
    int p0 = 0;
    if (b * 16 + 16 <= rows) {
      const uint16_t* src = W + (n0 + b * 16) * static_cast<int64_t>(K) + k0;
      for (; p0 + 16 <= full; p0 += 16) {
        __m512i r[16];
        for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(src + static_cast<int64_t>(i) * K + 2 * p0);
        transpose16(r);
        for (int j = 0; j < 16; j++) _mm512_storeu_si512(dst + (p0 + j) * 16, r[j]);
      }
    }
    for (int i = 0; i < 16; i++) {
      const int c = b * 16 + i;
      if (c >= rows) {
        for (int p = p0; p < pairs; p++) dst[p * 16 + i] = 0;
        continue;
      }
      const uint16_t* src = W + (n0 + c) * static_cast<int64_t>(K) + k0;
      for (int p = p0; p < full; p++) {
        uint32_t v;
        std::memcpy(&v, src + 2 * p, 4);
        dst[p * 16 + i] = v;
      }
      if (full < pairs) dst[full * 16 + i] = src[2 * full];  // odd kLen: (w, 0)
    }
  }
}

// GEMM tile: y[r, 0:16*NV] (+)= (xb (+ xl if S))[r, pairs] · packed blocks, for r < R; `cols` valid columns
// (<= 16*NV); xl = xb + xlOff.
template <int R, int NV, bool S>
inline void gemmTile(const uint16_t* xb, size_t xlOff, int ldx, const uint32_t* pk, int pairs, float* y, int ldy, int cols,
                     bool accum) {
  __m512 c[R][NV];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) c[r][v] = _mm512_setzero_ps();
  const uint32_t* x32 = reinterpret_cast<const uint32_t*>(xb);
  const int ldx32 = ldx / 2;
  for (int p = 0; p < pairs; p++) {
    __m512i w[NV];
    for (int v = 0; v < NV; v++) w[v] = _mm512_loadu_si512(pk + (static_cast<size_t>(v) * pairs + p) * 16);
    for (int r = 0; r < R; r++) {
      __m512i xv = _mm512_set1_epi32(static_cast<int>(x32[static_cast<size_t>(r) * ldx32 + p]));
      for (int v = 0; v < NV; v++) c[r][v] = _mm512_dpbf16_ps(c[r][v], (__m512bh)xv, (__m512bh)w[v]);
      if (S) {
        __m512i lv = _mm512_set1_epi32(static_cast<int>(x32[xlOff / 2 + static_cast<size_t>(r) * ldx32 + p]));
        for (int v = 0; v < NV; v++) c[r][v] = _mm512_dpbf16_ps(c[r][v], (__m512bh)lv, (__m512bh)w[v]);
      }
    }
  }
  for (int v = 0; v < NV; v++) {
    const int n = cols - 16 * v;
    if (n <= 0) break;
    const __mmask16 m = static_cast<__mmask16>(tailMask32(n > 16 ? 16 : n));
    for (int r = 0; r < R; r++) {
      float* d = y + static_cast<size_t>(r) * ldy + 16 * v;
      __m512 s = accum ? _mm512_add_ps(c[r][v], _mm512_maskz_loadu_ps(m, d)) : c[r][v];
      _mm512_mask_storeu_ps(d, m, s);
    }
  }
}

template <int NV, bool S>
void gemmRowsNV(int rb, const uint16_t* xb, size_t xlOff, int ldx, const uint32_t* pk, int pairs, float* y, int ldy, int cols,
                bool accum) {
  switch (rb) {
#define PDS_CASE(R) \
  case R: return gemmTile<R, NV, S>(xb, xlOff, ldx, pk, pairs, y, ldy, cols, accum);
    PDS_CASE(1) PDS_CASE(2) PDS_CASE(3) PDS_CASE(4) PDS_CASE(5) PDS_CASE(6)
    PDS_CASE(7) PDS_CASE(8) PDS_CASE(9) PDS_CASE(10) PDS_CASE(11) PDS_CASE(12)
#undef PDS_CASE
    default: return;
  }
}

template <bool S>
void gemmRange(const uint16_t* xb, size_t xlOff, int ldx, int M, int K, const uint16_t* W, int64_t b, int64_t e, float* y,
               int ldy, bool accum) {
  thread_local pds::cpu::AlignedVec<uint32_t> panel;
  if (panel.size() < static_cast<size_t>(NP) * (KC / 2)) panel.resize(static_cast<size_t>(NP) * (KC / 2));
  for (int kb = 0; kb < K; kb += KC) {
    const int kLen = K - kb < KC ? K - kb : KC, pairs = (kLen + 1) / 2;
    const bool acc = accum || kb > 0;
    for (int64_t p = b; p < e; p += NP) {
      const int rows = static_cast<int>((p + NP < e ? p + NP : e) - p);
      packPanel(W, K, p, rows, kb, kLen, pairs, panel.data());
      for (int m = 0; m < M; m += RB) {
        const int rb = M - m < RB ? M - m : RB;
        const uint16_t* xm = xb + static_cast<size_t>(m) * ldx + kb;
        float* ym = y + static_cast<size_t>(m) * ldy + p;
        int c = 0;
        for (; c + 16 < rows; c += 32)
          gemmRowsNV<2, S>(rb, xm, xlOff, ldx, panel.data() + static_cast<size_t>(c / 16) * pairs * 16, pairs, ym + c, ldy, rows - c, acc);
        if (c < rows) gemmRowsNV<1, S>(rb, xm, xlOff, ldx, panel.data() + static_cast<size_t>(c / 16) * pairs * 16, pairs, ym + c, ldy, rows - c, acc);
      }
    }
  }
}

}  // namespace

namespace pds::cpu {

bool hasAvx512Bf16() {
  static const bool v = hasAvx512() && __builtin_cpu_supports("avx512bf16") &&
                        !(std::getenv("PDSERVE_NO_AVX512BF16") && std::string(std::getenv("PDSERVE_NO_AVX512BF16")) == "1");
  return v;
}

Bf16Dot bf16DotMode() {
  static const Bf16Dot v = [] {
    const char* e = std::getenv("PDSERVE_CPU_BF16_DOT");
    return e && std::string(e) == "round" ? Bf16Dot::Round : Bf16Dot::Split;
  }();
  return v;
}

void matmulAvx512Bf16(ThreadPool& pool, const float* x, int M, int K, const uint16_t* W, int N, float* y, int ldy,
                      bool accumulate, Bf16Dot mode) {
  if (M <= 0 || N <= 0) return;
  const bool split = mode == Bf16Dot::Split;
  const int Kp = (K + 31) / 32 * 32;
  const size_t xn = static_cast<size_t>(M) * Kp;
  thread_local AlignedVec<uint16_t> xbuf;  // the caller's thread: workers only read it during this call
  if (xbuf.size() < 2 * xn) xbuf.resize(2 * xn);
  uint16_t* xb = xbuf.data();
  uint16_t* xl = split ? xb + xn : nullptr;
  if (M >= 64)
    pool.parallelRange(M, 8, [&](int64_t b, int64_t e) {
      toBf16Rows(x + b * K, static_cast<int>(e - b), K, xb + b * Kp, xl ? xl + b * Kp : nullptr, Kp);
    });
  else
    toBf16Rows(x, M, K, xb, xl, Kp);
  if (M <= DECODE_MAX) {
    pool.parallelChunks(N, 16, [&](int64_t b, int64_t e) {
      if (split)
        decodeAny<true>(M, xb, xn, Kp, W + b * K, K, y + b, ldy, e - b, accumulate);
      else
        decodeAny<false>(M, xb, xn, Kp, W + b * K, K, y + b, ldy, e - b, accumulate);
    });
    return;
  }
  pool.parallelChunks(N, 32, [&](int64_t b, int64_t e) {
    if (split)
      gemmRange<true>(xb, xn, Kp, M, K, W, b, e, y, ldy, accumulate);
    else
      gemmRange<false>(xb, xn, Kp, M, K, W, b, e, y, ldy, accumulate);
  });
}

}  // namespace pds::cpu
