// Each kernel against a straightforward CPU reference in double on random inputs (inputs rounded to the
// kernel's dtype first). Pass: relative L2 error ||out - ref|| / ||ref|| under tolFor(dtype)
// (f32 1e-5, f16 3e-3, bf16 1e-2) unless a test states otherwise; integer outputs must match exactly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../cublas-loader.h"
#include "../kernels.h"
#include "pds/sample-row.h"
#include "harness.h"

namespace pds::test {
using namespace pds::cuda;

namespace {

std::mt19937 rng;
const DType kAll[] = {DType::F32, DType::F16, DType::BF16};
std::string tag(DType t) { return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "bf16"; }

int32_t* devInts(const std::vector<int32_t>& v) {
  int32_t* d = nullptr;
  TCHECK(cudaMalloc(&d, std::max<size_t>(v.size(), 4) * 4));
  if (!v.empty()) TCHECK(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  return d;
}
void sync() { TCHECK(cudaDeviceSynchronize()); }
void check(bool ok, const std::string& name, double err, double tol) {
  char b[96]; std::snprintf(b, sizeof b, "(err %.2e, tol %.0e)", err, tol);
  results().record(ok && err <= tol, name, b);
}

void testEmbedding(DType t) {
  const int V = 50, H = 64;
  auto table = randomVec(rng, V * H, -1, 1, t);
  std::vector<int32_t> ids = {3, 0, 49, 17, 50, -1, 3};
  void* dt = toDevice(t, table);
  int32_t* di = devInts(ids);
  void* out = toDevice(t, std::vector<float>(ids.size() * H, 7.f));
  int* flag; TCHECK(cudaMalloc(&flag, 4)); TCHECK(cudaMemset(flag, 0, 4));
  launchEmbedding(t, t, di, (int)ids.size(), dt, V, H, out, flag, 0);
  sync();
  auto o = fromDevice(t, out, ids.size() * H);
  std::vector<double> ref(o.size());
  for (size_t r = 0; r < ids.size(); ++r)
    for (int i = 0; i < H; ++i) ref[r * H + i] = (ids[r] >= 0 && ids[r] < V) ? table[ids[r] * H + i] : 0.0;
  int f = 0; TCHECK(cudaMemcpy(&f, flag, 4, cudaMemcpyDeviceToHost));
  check(f == 1, "embedding/" + tag(t) + " (out-of-range ids -> zeros + flag)", relErr(o, ref), 0);
  TCHECK(cudaMemset(flag, 0, 4));
  launchEmbedding(t, t, di, 4, dt, V, H, out, flag, 0);
  sync();
  TCHECK(cudaMemcpy(&f, flag, 4, cudaMemcpyDeviceToHost));
  results().record(f == 0, "embedding/" + tag(t) + " (valid ids leave flag clear)", "");
  if (t != DType::F32) {  // f32 compute over a bf16/f16 table: exact widening
    void* o32 = toDevice(DType::F32, std::vector<float>(ids.size() * H, 7.f));
    launchEmbedding(t, DType::F32, di, (int)ids.size(), dt, V, H, o32, flag, 0);
    sync();
    check(true, "embedding/" + tag(t) + " -> f32 out", relErr(fromDevice(DType::F32, o32, ids.size() * H), ref), 0);
    cudaFree(o32);
  }
  cudaFree(dt); cudaFree(di); cudaFree(out); cudaFree(flag);
}

void testRmsNorm(DType t, int H, bool withAdd, bool withIdx) {
  const int rows = 5;
  const float eps = 1e-5f;
  auto x = randomVec(rng, rows * H, -2, 2, t), a = randomVec(rng, rows * H, -1, 1, t), w = randomVec(rng, H, 0.5, 1.5, t);
  std::vector<int32_t> idx = {4, 1, 2};
  const int outRows = withIdx ? (int)idx.size() : rows;
  void *dx = toDevice(t, x), *da = toDevice(t, a), *dw = toDevice(t, w);
  void* dout = toDevice(t, std::vector<float>(outRows * H, NAN));
  int32_t* di = devInts(idx);
  launchRmsNorm(t, dx, withAdd ? da : nullptr, dw, dout, withIdx ? di : nullptr, outRows, H, eps, 0);
  sync();
  auto o = fromDevice(t, dout, outRows * H);
  std::vector<double> ref(outRows * H);
  for (int r = 0; r < outRows; ++r) {
    const int src = withIdx ? idx[r] : r;
    std::vector<double> v(H);
    double ss = 0;
    for (int i = 0; i < H; ++i) {
      v[i] = withAdd ? roundTo(t, x[src * H + i] + a[src * H + i]) : x[src * H + i];
      ss += v[i] * v[i];
    }
    const double inv = 1.0 / std::sqrt(ss / H + eps);
    for (int i = 0; i < H; ++i) ref[r * H + i] = v[i] * inv * w[i];
  }
  const std::string name = "rmsnorm/" + tag(t) + " H=" + std::to_string(H) + (withAdd ? " +residual" : "") + (withIdx ? " rows" : "");
  check(true, name, relErr(o, ref), tolFor(t));
  cudaFree(dx); cudaFree(da); cudaFree(dw); cudaFree(dout); cudaFree(di);
}

void testQkvPrep(DType t, int D, int nH, int nKV, bool bias, bool norm) {
  const int T = 7, heads = nH + 2 * nKV, slotsTotal = 64 * 16;
  const float eps = 1e-6f;
  auto qkv = randomVec(rng, T * heads * D, -2, 2, t);
  auto b = randomVec(rng, heads * D, -0.5, 0.5, t);
  auto qw = randomVec(rng, D, 0.5, 1.5, t), kw = randomVec(rng, D, 0.5, 1.5, t);
  std::vector<float> inv(D / 2);
  for (int i = 0; i < D / 2; ++i) inv[i] = (float)(1.0 / std::pow(10000.0, 2.0 * i / D));
  std::vector<int32_t> pos(T), slots(T);
  std::uniform_int_distribution<int> up(0, 5000);
  std::vector<int32_t> perm(slotsTotal); std::iota(perm.begin(), perm.end(), 0); std::shuffle(perm.begin(), perm.end(), rng);
  for (int i = 0; i < T; ++i) { pos[i] = up(rng); slots[i] = perm[i]; }
  slots[T - 1] = -1;  // padding token: no cache write
  void *dq = toDevice(t, qkv), *db = toDevice(t, b), *dqw = toDevice(t, qw), *dkw = toDevice(t, kw);
  void* dinv = toDevice(DType::F32, inv);
  int32_t *dpos = devInts(pos), *dsl = devInts(slots);
  std::vector<float> poison((size_t)slotsTotal * nKV * D, 1234.f);
  void *kc = toDevice(t, poison), *vc = toDevice(t, poison);
  launchQkvPrep(t, dq, T, nH, nKV, D, bias ? db : nullptr, norm ? dqw : nullptr, norm ? dkw : nullptr, eps,
                (const float*)dinv, dpos, dsl, kc, vc, 0);
  sync();
  auto q = fromDevice(t, dq, qkv.size());
  auto k = fromDevice(t, kc, poison.size()), v = fromDevice(t, vc, poison.size());
  std::vector<float> got; std::vector<double> ref;
  bool untouched = true;
  for (int tk = 0; tk < T; ++tk)
    for (int h = 0; h < heads; ++h) {
      const int kind = h < nH ? 0 : h < nH + nKV ? 1 : 2;
      std::vector<double> x(D);
      for (int i = 0; i < D; ++i) {
        const float raw = qkv[((size_t)tk * heads + h) * D + i];
        x[i] = bias ? roundTo(t, raw + b[h * D + i]) : raw;
      }
      if (norm && kind < 2) {
        double ss = 0; for (double e : x) ss += e * e;
        const double r = 1.0 / std::sqrt(ss / D + eps);
        for (int i = 0; i < D; ++i) x[i] = x[i] * r * (kind == 0 ? qw[i] : kw[i]);
      }
      if (kind < 2) {
        std::vector<double> y(D);
        for (int i = 0; i < D / 2; ++i) {
          const double ang = (double)(float)((float)pos[tk] * inv[i]);
          y[i] = x[i] * std::cos(ang) - x[i + D / 2] * std::sin(ang);
          y[i + D / 2] = x[i + D / 2] * std::cos(ang) + x[i] * std::sin(ang);
        }
        x = y;
      }
      for (int i = 0; i < D; ++i) {
        if (kind == 0) got.push_back(q[((size_t)tk * heads + h) * D + i]);
        else if (slots[tk] >= 0) {
          const int kvh = h - nH - (kind == 2 ? nKV : 0);
          got.push_back((kind == 1 ? k : v)[((size_t)slots[tk] * nKV + kvh) * D + i]);
        } else continue;
        ref.push_back(x[i]);
      }
    }
  for (int s = 0; s < slotsTotal; ++s) {
    if (std::find(slots.begin(), slots.end(), s) != slots.end()) continue;
    if (k[(size_t)s * nKV * D] != roundTo(t, 1234.f) || v[(size_t)s * nKV * D] != roundTo(t, 1234.f)) untouched = false;
  }
  char nm[128];
  std::snprintf(nm, sizeof nm, "qkv_prep/%s D=%d heads=%d/%d%s%s (rope, kv write)", tag(t).c_str(), D, nH, nKV,
                bias ? " +bias" : "", norm ? " +qk_norm" : "");
  // rope angles up to ~5000 rad: f32 sin/cos of the same f32 angle agree to ~1e-6 relative
  check(untouched, nm, relErr(got, ref), std::max(tolFor(t), 2e-5));
  for (void* p : {dq, db, dqw, dkw, dinv, (void*)dpos, (void*)dsl, kc, vc}) cudaFree(p);
}

void testSiluMul(DType t, int I) {
  const int T = 3;
  auto gu = randomVec(rng, T * 2 * I, -4, 4, t);
  void* d = toDevice(t, gu);
  void* o = toDevice(t, std::vector<float>(T * I, NAN));
  launchSiluMul(t, d, o, T, I, 0);
  sync();
  auto got = fromDevice(t, o, T * I);
  std::vector<double> ref(T * I);
  for (int r = 0; r < T; ++r)
    for (int i = 0; i < I; ++i) {
      const double g = gu[r * 2 * I + i], u = gu[r * 2 * I + I + i];
      ref[r * I + i] = g / (1 + std::exp(-g)) * u;
    }
  check(true, "silu_mul/" + tag(t) + " I=" + std::to_string(I), relErr(got, ref), std::max(tolFor(t), 1e-6));
  cudaFree(d); cudaFree(o);
}

// A paged cache with random contents and shuffled block tables for the attention tests.
struct AttnCase {
  int D, nH, nKV, bs = 16;
  std::vector<int> ctx, nNew;     // per sequence
  int T = 0, numBlocks = 0, btStride = 0;
  std::vector<int32_t> bt, qsl, tokSeq, tokCtx;
  std::vector<float> q, k, v;
  void build(DType t) {
    const int S = (int)ctx.size();
    qsl = {0};
    for (int s = 0; s < S; ++s) {
      for (int i = 0; i < nNew[s]; ++i) { tokSeq.push_back(s); tokCtx.push_back(ctx[s] - nNew[s] + i + 1); }
      qsl.push_back(qsl.back() + nNew[s]);
      btStride = std::max(btStride, (ctx[s] + bs - 1) / bs);
      numBlocks += (ctx[s] + bs - 1) / bs;
    }
    T = qsl.back();
    numBlocks += 3;
    std::vector<int32_t> perm(numBlocks); std::iota(perm.begin(), perm.end(), 0); std::shuffle(perm.begin(), perm.end(), rng);
    bt.assign((size_t)S * btStride, 0);
    int next = 0;
    for (int s = 0; s < S; ++s) for (int j = 0; j < (ctx[s] + bs - 1) / bs; ++j) bt[s * btStride + j] = perm[next++];
    q = randomVec(rng, (size_t)T * nH * D, -1, 1, t);
    k = randomVec(rng, (size_t)numBlocks * bs * nKV * D, -1, 1, t);
    v = randomVec(rng, (size_t)numBlocks * bs * nKV * D, -1, 1, t);
  }
  std::vector<double> reference() const {
    std::vector<double> out((size_t)T * nH * D);
    const double scale = 1.0 / std::sqrt((double)D);
    const int G = nH / nKV;
    for (int tk = 0; tk < T; ++tk)
      for (int h = 0; h < nH; ++h) {
        const int s = tokSeq[tk], n = tokCtx[tk], kvh = h / G;
        std::vector<double> sc(n);
        double m = -1e300;
        for (int j = 0; j < n; ++j) {
          const size_t slot = (size_t)bt[s * btStride + j / bs] * bs + j % bs;
          double d = 0;
          for (int i = 0; i < D; ++i) d += (double)q[((size_t)tk * nH + h) * D + i] * k[(slot * nKV + kvh) * D + i];
          sc[j] = d * scale; m = std::max(m, sc[j]);
        }
        double l = 0; for (auto& e : sc) { e = std::exp(e - m); l += e; }
        for (int j = 0; j < n; ++j) {
          const size_t slot = (size_t)bt[s * btStride + j / bs] * bs + j % bs;
          for (int i = 0; i < D; ++i) out[((size_t)tk * nH + h) * D + i] += sc[j] / l * v[(slot * nKV + kvh) * D + i];
        }
      }
    return out;
  }
};

// fused = launchPagedAttentionFused, launched twice (output reset to NaN in between) to check that it
// leaves its counters at zero for the next launch (CUDA-graph replays).
void testPagedAttention(DType t, int D, int nH, int nKV, int splitSize, bool fused = false,
                        std::vector<int> ctx = {1, 17, 255, 300, 1000}, std::vector<int> nNew = {1, 1, 3, 1, 5}) {
  AttnCase c; c.D = D; c.nH = nH; c.nKV = nKV;
  c.ctx = ctx; c.nNew = nNew;
  c.build(t);
  const int maxCtx = *std::max_element(ctx.begin(), ctx.end());
  void *dq = toDevice(t, c.q), *dk = toDevice(t, c.k), *dv = toDevice(t, c.v);
  void* dout = toDevice(t, std::vector<float>((size_t)c.T * nH * D, NAN));
  int32_t *dbt = devInts(c.bt), *dseq = devInts(c.tokSeq), *dctx = devInts(c.tokCtx);
  PagedAttnArgs a;
  a.q = dq; a.qStride = nH * D; a.kCache = dk; a.vCache = dv; a.blockTables = dbt; a.btStride = c.btStride;
  a.tokenSeq = dseq; a.tokenCtx = dctx; a.T = c.T; a.nH = nH; a.nKV = nKV; a.D = D; a.blockSize = c.bs;
  a.scale = 1.f / std::sqrt((float)D); a.splitSize = splitSize; a.maxSplits = (maxCtx + splitSize - 1) / splitSize + 1;
  TCHECK(cudaMalloc(&a.wsO, (size_t)c.T * nH * a.maxSplits * D * 4));
  TCHECK(cudaMalloc(&a.wsML, (size_t)c.T * nH * a.maxSplits * 2 * 4));
  const size_t nCtr = (size_t)c.T * pagedAttentionCountersPerToken(nH, nKV);
  TCHECK(cudaMalloc(&a.counters, nCtr * 4));
  TCHECK(cudaMemset(a.counters, 0, nCtr * 4));
  a.out = dout;
  std::string ctxs;
  for (size_t i = 0; i < ctx.size(); ++i) ctxs += (i ? "," : "") + std::to_string(ctx[i]) + (nNew[i] > 1 ? "x" + std::to_string(nNew[i]) : "");
  char nm[200];
  std::snprintf(nm, sizeof nm, "paged_attention%s/%s D=%d heads=%d/%d (G=%d) split=%d ctx=%s", fused ? "_fused" : "", tag(t).c_str(), D,
                nH, nKV, nH / nKV, splitSize, ctxs.c_str());
  const auto ref = c.reference();
  for (int rep = 0; rep < (fused ? 2 : 1); ++rep) {
    if (rep) TCHECK(cudaMemset(dout, 0xff, (size_t)c.T * nH * D * dtypeSize(t)));  // NaN in every dtype
    if (fused) launchPagedAttentionFused(t, a, 0);
    else launchPagedAttention(t, a, 0);
    sync();
    auto got = fromDevice(t, dout, (size_t)c.T * nH * D);
    check(true, std::string(nm) + (rep ? " (2nd launch)" : ""), relErr(got, ref), std::max(tolFor(t), 1e-5));
  }
  if (fused) {
    std::vector<int32_t> ctr(nCtr);
    TCHECK(cudaMemcpy(ctr.data(), a.counters, nCtr * 4, cudaMemcpyDeviceToHost));
    results().record(std::all_of(ctr.begin(), ctr.end(), [](int32_t v) { return v == 0; }),
                     std::string(nm) + " leaves counters at 0", "");
  }
  for (void* p : {dq, dk, dv, dout, (void*)dbt, (void*)dseq, (void*)dctx, (void*)a.wsO, (void*)a.wsML, (void*)a.counters}) cudaFree(p);
}

// Kernel variants: Mma = launchPrefillAttentionMma's choices (2 heads per block when G is even; these small
// grids fit the device, so zigzag order), Mma1 = one head per block, MmaHeavyFirst = most-keys-first order,
// Wmma = the first kernel (launchPrefillAttentionWmma).
enum class PrefillKernel { Mma, Mma1, MmaHeavyFirst, Wmma };
void testPrefillAttention(DType t, int D, int nH, int nKV, PrefillKernel kernel = PrefillKernel::Mma,
                          std::vector<int> ctx = {1, 65, 167, 337, 64}, std::vector<int> nNew = {1, 65, 130, 37, 64},
                          int blockSize = 16) {
  AttnCase c; c.D = D; c.nH = nH; c.nKV = nKV; c.bs = blockSize;
  c.ctx = ctx; c.nNew = nNew;
  c.build(t);
  const int S = (int)c.ctx.size();
  std::vector<int32_t> tiles, ctxs(c.ctx.begin(), c.ctx.end());
  for (int s = 0; s < S; ++s) for (int r = 0; r < c.nNew[s]; r += kPrefillTileRows) { tiles.push_back(s); tiles.push_back(r); }
  void *dq = toDevice(t, c.q), *dk = toDevice(t, c.k), *dv = toDevice(t, c.v);
  void* dout = toDevice(t, std::vector<float>((size_t)c.T * nH * D, NAN));
  int32_t *dbt = devInts(c.bt), *dtiles = devInts(tiles), *dqsl = devInts(c.qsl), *dctx = devInts(ctxs);
  PrefillAttnArgs a{dq, nH * D, dk, dv, dbt, c.btStride, dtiles, (int)tiles.size() / 2, dqsl, dctx, nH, nKV, D, c.bs,
                    1.f / std::sqrt((float)D), dout};
  if (kernel == PrefillKernel::Wmma) launchPrefillAttentionWmma(t, a, 0);
  else launchPrefillAttentionMma(t, a, 0, kernel == PrefillKernel::Mma1 ? 1 : 0, kernel == PrefillKernel::MmaHeavyFirst ? 0 : -1);
  sync();
  auto got = fromDevice(t, dout, (size_t)c.T * nH * D);
  std::string rowList, ctxList;
  for (int s = 0; s < S; ++s) { rowList += (s ? "," : "") + std::to_string(c.nNew[s]); ctxList += (s ? "," : "") + std::to_string(c.ctx[s]); }
  char nm[200];
  std::snprintf(nm, sizeof nm, "prefill_attention%s/%s D=%d heads=%d/%d (G=%d) rows=%s ctx=%s block=%d",
                kernel == PrefillKernel::Wmma ? "_wmma" : kernel == PrefillKernel::Mma1 ? "_mma1" :
                kernel == PrefillKernel::MmaHeavyFirst ? "_heavy_first" : "",
                tag(t).c_str(), D, nH, nKV, nH / nKV, rowList.c_str(), ctxList.c_str(), blockSize);
  check(true, nm, relErr(got, c.reference()), tolFor(t));
  for (void* p : {dq, dk, dv, dout, (void*)dbt, (void*)dtiles, (void*)dqsl, (void*)dctx}) cudaFree(p);
}

// ref[m, n] = sum_k x[m, k] * w[n, k], in double (x [M, K], w [N, K]).
template <typename X>
std::vector<double> refMatmul(const std::vector<X>& x, const std::vector<float>& w, int M, int N, int K) {
  std::vector<double> ref((size_t)M * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
      ref[(size_t)m * N + n] = s;
    }
  return ref;
}

// SwiGLU of a [M, 2K] gate/up buffer: silu(g) * u per [M, K] element, rounded through *roundAs when given
// (what the separate SiLU kernel would store).
std::vector<double> siluInputs(const std::vector<float>& gu, int M, int K, const DType* roundAs) {
  std::vector<double> a((size_t)M * K);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) {
      const double g = gu[(size_t)m * 2 * K + k], u = gu[(size_t)m * 2 * K + K + k], v = g / (1 + std::exp(-g)) * u;
      a[(size_t)m * K + k] = roundAs ? roundTo(*roundAs, (float)v) : v;
    }
  return a;
}

void testMatmul(DType t, int M, int N, int K, bool outF32, bool gemv, Cublas* blas) {
  auto x = randomVec(rng, (size_t)M * K, -1, 1, t), w = randomVec(rng, (size_t)N * K, -1, 1, t);
  void *dx = toDevice(t, x), *dw = toDevice(t, w);
  const DType ot = outF32 ? DType::F32 : t;
  void* dy = toDevice(ot, std::vector<float>((size_t)M * N, NAN));
  if (gemv) launchGemv(t, t, dx, dw, dy, M, N, K, outF32, 0);
  else blas->gemm(t, dx, dw, dy, M, N, K, outF32);
  sync();
  auto got = fromDevice(ot, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(x, w, M, N, K);
  char nm[128];
  std::snprintf(nm, sizeof nm, "%s/%s M=%d N=%d K=%d out=%s", gemv ? "gemv" : "cublas_gemm", tag(t).c_str(), M, N, K,
                outF32 ? "f32" : tag(t).c_str());
  check(true, nm, relErr(got, ref), outF32 ? (t == DType::F32 ? 1e-5 : 1e-5) : tolFor(t));
  cudaFree(dx); cudaFree(dw); cudaFree(dy);
}

// f32 activations x bf16/f16 weights (the f32-compute mode): GEMV reads f32 x; cuBLAS gets x split into hi + lo
// weight-dtype operands, two GEMMs accumulated (as CudaBackend::linear). x is NOT rounded: the tolerance
// (3e-5) fails if x were rounded to the weight dtype once (~2e-3 for bf16).
void testMatmulMixed(DType wt, int M, int N, int K, bool gemv, Cublas* blas) {
  auto x = randomVec(rng, (size_t)M * K, -1, 1, DType::F32), w = randomVec(rng, (size_t)N * K, -1, 1, wt);
  void *dx = toDevice(DType::F32, x), *dw = toDevice(wt, w);
  void* dy = toDevice(DType::F32, std::vector<float>((size_t)M * N, NAN));
  void *hi = nullptr, *lo = nullptr;
  if (gemv) launchGemv(DType::F32, wt, dx, dw, dy, M, N, K, false, 0);
  else {
    TCHECK(cudaMalloc(&hi, (size_t)M * K * 2)); TCHECK(cudaMalloc(&lo, (size_t)M * K * 2));
    launchSplitHiLo(wt, (const float*)dx, hi, lo, (size_t)M * K, 0);
    blas->gemm(wt, hi, dw, dy, M, N, K, true);
    blas->gemm(wt, lo, dw, dy, M, N, K, true, 0, true);
  }
  sync();
  auto got = fromDevice(DType::F32, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(x, w, M, N, K);
  char nm[128];
  std::snprintf(nm, sizeof nm, "%s/f32 x %s M=%d N=%d K=%d", gemv ? "gemv" : "cublas_split_gemm", tag(wt).c_str(), M, N, K);
  check(true, nm, relErr(got, ref), 3e-5);
  for (void* p : {dx, dw, dy, hi, lo}) if (p) cudaFree(p);
}

void testGemvSiluMixed(DType wt) {
  const int M = 3, N = 64, K = 512;
  auto gu = randomVec(rng, (size_t)M * 2 * K, -3, 3, DType::F32), w = randomVec(rng, (size_t)N * K, -1, 1, wt);
  void *dg = toDevice(DType::F32, gu), *dw = toDevice(wt, w), *dy = toDevice(DType::F32, std::vector<float>((size_t)M * N, NAN));
  launchGemvSilu(DType::F32, wt, dg, dw, dy, M, N, K, 0);
  sync();
  auto got = fromDevice(DType::F32, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(siluInputs(gu, M, K, nullptr), w, M, N, K);  // f32 x: no rounding
  check(true, "gemv_silu/f32 x " + tag(wt) + " M=3 N=64 K=512", relErr(got, ref), 3e-5);
  cudaFree(dg); cudaFree(dw); cudaFree(dy);
}

void testGemvSilu(DType t) {
  const int M = 2, N = 64, K = 512;
  auto gu = randomVec(rng, (size_t)M * 2 * K, -3, 3, t), w = randomVec(rng, (size_t)N * K, -1, 1, t);
  void *dg = toDevice(t, gu), *dw = toDevice(t, w), *dy = toDevice(t, std::vector<float>((size_t)M * N, NAN));
  launchGemvSilu(t, t, dg, dw, dy, M, N, K, 0);
  sync();
  auto got = fromDevice(t, dy, (size_t)M * N);
  const std::vector<double> ref = refMatmul(siluInputs(gu, M, K, &t), w, M, N, K);
  check(true, "gemv_silu/" + tag(t) + " M=2 N=64 K=512", relErr(got, ref), std::max(tolFor(t), 1e-5));
  cudaFree(dg); cudaFree(dw); cudaFree(dy);
}

// launchSample against pds::sampleRow (the CPU backend's sampler, itself held to src/engine/sampler.ts) on the
// same rows and uniform draws: greedy, temperature, top-k, top-p, min-p, ties at the top; tokens must be equal.
void testSample() {
  const int V = 151936;
  const RowSampling ps[] = {
      {0.f, 1.f, 0.f, 0.f, 0},      {1.f, 1.f, 0.f, 0.f, 0},      {0.5f, 1.f, 0.f, 0.f, 0},
      {1.25f, 1.f, 0.f, 0.f, 5},    {0.75f, 1.f, 0.f, 0.f, 50},   {1.f, 0.9f, 0.f, 0.f, 0},
      {0.5f, 0.5f, 0.f, 0.f, 0},    {1.f, 1.f, 0.1f, 0.f, 0},     {0.75f, 0.8f, 0.05f, 0.f, 40},
      {1.f, 1.f, 0.f, 0.f, 1},
  };
  const int P = sizeof ps / sizeof ps[0], rowsPerCase = 6, R = P * rowsPerCase;
  std::vector<float> logits((size_t)R * V);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::uniform_real_distribution<float> ud(0.f, 1.f);
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < V; ++i) logits[(size_t)r * V + i] = nd(rng);
    if (r % 3 == 0) for (int i = 0; i < 20; ++i) logits[(size_t)r * V + (i * 7919) % V] = 9.f;  // ties at the top
  }
  std::vector<RowSampling> params(R);
  for (int r = 0; r < R; ++r) { params[r] = ps[r % P]; params[r].u = std::min(ud(rng), 0.99999994f); }
  float* dl; RowSampling* dp; int32_t* dout;
  TCHECK(cudaMalloc(&dl, logits.size() * 4)); TCHECK(cudaMalloc(&dp, R * sizeof(RowSampling))); TCHECK(cudaMalloc(&dout, R * 4));
  TCHECK(cudaMemcpy(dl, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice));
  TCHECK(cudaMemcpy(dp, params.data(), R * sizeof(RowSampling), cudaMemcpyHostToDevice));
  launchSample(dl, R, V, dp, dout, 0);
  sync();
  std::vector<int32_t> got(R);
  TCHECK(cudaMemcpy(got.data(), dout, R * 4, cudaMemcpyDeviceToHost));
  std::vector<float> scratch;
  int bad = 0; std::string first;
  for (int r = 0; r < R; ++r) {
    const int32_t want = sampleRow(logits.data() + (size_t)r * V, V, params[r], scratch);
    if (got[r] != want && bad++ == 0) first = ", first: row " + std::to_string(r) + " got " + std::to_string(got[r]) + " want " + std::to_string(want);
  }
  results().record(bad == 0, "sample (greedy/temperature/top-k/top-p/min-p) vs host sampleRow, " + std::to_string(R) + " rows of 151936",
                   "(" + std::to_string(bad) + " differ" + first + ")");
  cudaFree(dl); cudaFree(dp); cudaFree(dout);
}

void testArgmax() {
  const int rows = 3, V = 151936;
  auto l = randomVec(rng, (size_t)rows * V, -5, 5, DType::F32);
  l[5] = 9; l[77] = 9;                   // tie: lowest index wins
  l[V + 151935] = 20;                    // last element
  l[2 * V + 1000] = 7; l[2 * V + 9] = 7.5f;
  void* d = toDevice(DType::F32, l);
  int32_t* o; TCHECK(cudaMalloc(&o, rows * 4));
  launchArgmax((const float*)d, rows, V, o, 0);
  sync();
  int32_t h[3]; TCHECK(cudaMemcpy(h, o, 12, cudaMemcpyDeviceToHost));
  results().record(h[0] == 5 && h[1] == 151935 && h[2] == 9, "argmax (ties -> lowest index)",
                   std::to_string(h[0]) + "," + std::to_string(h[1]) + "," + std::to_string(h[2]));
  cudaFree(d); cudaFree(o);
}

void testKvPack() {
  const int blocks = 20, bs = 16, planes = 3, tokens = 37;
  const size_t rowBytes = 2 * 64 * 2;
  const size_t plane = (size_t)blocks * bs * rowBytes;
  std::vector<uint8_t> cache(planes * plane);
  for (auto& b : cache) b = (uint8_t)rng();
  std::vector<int32_t> ids = {7, 2, 19};
  void *dc, *ds, *dc2;
  TCHECK(cudaMalloc(&dc, cache.size())); TCHECK(cudaMalloc(&dc2, cache.size()));
  TCHECK(cudaMalloc(&ds, planes * tokens * rowBytes));
  TCHECK(cudaMemcpy(dc, cache.data(), cache.size(), cudaMemcpyHostToDevice));
  TCHECK(cudaMemset(dc2, 0, cache.size()));
  int32_t* di = devInts(ids);
  launchKvPack(dc, plane, ds, planes, di, tokens, bs, rowBytes, 0);
  launchKvUnpack(dc2, plane, ds, planes, di, tokens, bs, rowBytes, 0);
  sync();
  std::vector<uint8_t> st(planes * tokens * rowBytes), back(cache.size());
  TCHECK(cudaMemcpy(st.data(), ds, st.size(), cudaMemcpyDeviceToHost));
  TCHECK(cudaMemcpy(back.data(), dc2, back.size(), cudaMemcpyDeviceToHost));
  bool ok = true;
  for (int p = 0; p < planes; ++p)
    for (int tk = 0; tk < tokens; ++tk) {
      const size_t slot = (size_t)ids[tk / bs] * bs + tk % bs;
      const uint8_t* src = &cache[p * plane + slot * rowBytes];
      ok = ok && !std::memcmp(&st[(p * tokens + tk) * rowBytes], src, rowBytes);
      ok = ok && !std::memcmp(&back[p * plane + slot * rowBytes], src, rowBytes);
    }
  results().record(ok, "kv_pack/unpack (3 planes, 37 tokens, blocks 7,2,19)", "exact");
  cudaFree(dc); cudaFree(dc2); cudaFree(ds); cudaFree(di);
}

void testConvertAndFill() {
  auto x = randomVec(rng, 1000, -3, 3, DType::F32);
  void* d = toDevice(DType::F32, x);
  void* o; TCHECK(cudaMalloc(&o, 2000));
  launchConvert(DType::BF16, o, DType::F32, d, 1000, 0);
  sync();
  auto got = fromDevice(DType::BF16, o, 1000);
  bool ok = true;
  for (int i = 0; i < 1000; ++i) ok = ok && got[i] == roundTo(DType::BF16, x[i]);
  results().record(ok, "convert f32->bf16 (round to nearest even)", "exact");
  launchFillRandom(DType::F32, d, 1000, 42, 0.5f, 1.f, 0);
  sync();
  auto a = fromDevice(DType::F32, d, 1000);
  launchFillRandom(DType::F32, d, 1000, 42, 0.5f, 1.f, 0);
  sync();
  auto b = fromDevice(DType::F32, d, 1000);
  double mn = 9, mx = -9, mean = 0;
  for (float e : a) { mn = std::min<double>(mn, e); mx = std::max<double>(mx, e); mean += e / 1000; }
  results().record(a == b && mn >= 0.5 && mx < 1.5 && std::fabs(mean - 1) < 0.05, "fill_random (deterministic, range)", "");
  cudaFree(d); cudaFree(o);
}

}  // namespace

void runKernelTests(uint64_t seed) {
  rng.seed((uint32_t)seed);
  for (DType t : kAll) {
    testEmbedding(t);
    testRmsNorm(t, 64, false, false);
    testRmsNorm(t, 4096, true, false);
    testRmsNorm(t, 1024, true, true);
    testSiluMul(t, 256);
    testSiluMul(t, 172);
    for (int D : {64, 128}) {
      testQkvPrep(t, D, 8, 2, false, false);
      testQkvPrep(t, D, 4, 4, true, false);
      testQkvPrep(t, D, 16, 2, false, true);
    }
    for (int D : {64, 128})
      for (int G : {1, 4, 8}) testPagedAttention(t, D, 2 * G, 2, 256);
  }
  testQkvPrep(DType::BF16, 256, 4, 1, true, true);
  testQkvPrep(DType::F32, 8, 8, 4, false, false);
  testPagedAttention(DType::BF16, 128, 32, 8, 32);   // many splits
  testPagedAttention(DType::F32, 8, 8, 4, 256);      // stories260K shape
  testPagedAttention(DType::F32, 32, 8, 2, 64);      // llama3-tiny shape
  testPagedAttention(DType::BF16, 256, 4, 2, 256);
  testPagedAttention(DType::F16, 128, 16, 1, 256);   // G=16: two head groups per kv head
  // fused kernel: the decode splits (64: one pass for bf16 D=128), few/many splits, one split (direct
  // write), split sizes that are not a multiple of a pass, prefill-like causal rows of one sequence
  for (DType t : kAll) {
    for (int D : {64, 128})
      for (int G : {1, 2, 4, 8}) testPagedAttention(t, D, 2 * G, 2, 64, true);
    testPagedAttention(t, 128, 32, 8, 256, true);
    testPagedAttention(t, 128, 16, 8, 2048, true);      // every context in one split
  }
  testPagedAttention(DType::BF16, 128, 32, 8, 32, true);
  testPagedAttention(DType::BF16, 128, 32, 8, 96, true);
  testPagedAttention(DType::F32, 8, 8, 4, 256, true);     // stories260K shape
  testPagedAttention(DType::F32, 32, 8, 2, 64, true);     // llama3-tiny shape
  testPagedAttention(DType::BF16, 256, 4, 2, 64, true);
  testPagedAttention(DType::BF16, 256, 16, 2, 128, true); // D=256 with G=8
  testPagedAttention(DType::F16, 128, 16, 1, 64, true);   // G=16: two head groups per kv head
  testPagedAttention(DType::F32, 16, 12, 4, 32, true);    // G=3 (group of 4, one head idle)
  testPagedAttention(DType::F32, 64, 8, 2, 256, true, {300, 77}, {300, 77});   // prefill rows, causal
  testPagedAttention(DType::BF16, 128, 32, 8, 64, true, {2049}, {1});           // the benchmark decode shape
  testPagedAttention(DType::BF16, 128, 32, 8, 128, true, {2049}, {1});
  testPagedAttention(DType::BF16, 128, 16, 8, 256, true, {2049}, {1});          // the forward's split there
  // tensor-core kernel (f16/bf16, D 64/128): 3 of 8 head rows used, splits ending inside a warp step,
  // causal prefill rows
  testPagedAttention(DType::BF16, 64, 12, 4, 48, true);
  testPagedAttention(DType::F16, 64, 12, 4, 200, true);
  testPagedAttention(DType::BF16, 128, 16, 2, 64, true, {300, 77}, {300, 77});
  testPagedAttention(DType::F16, 128, 8, 1, 128, true, {129, 16, 15}, {3, 16, 1});
  for (DType t : {DType::F16, DType::BF16})
    for (int D : {64, 128})
      for (int G : {1, 4, 8}) {
        testPrefillAttention(t, D, 2 * G, 2);
        testPrefillAttention(t, D, 2 * G, 2, PrefillKernel::Wmma);
        if (G > 1) testPrefillAttention(t, D, 2 * G, 2, PrefillKernel::Mma1);
      }
  // long cached prefixes (many tiles through the cp.async ring, diagonal tiles at odd offsets), 2 kv heads
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::Mma, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::Mma1, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::MmaHeavyFirst, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::F16, 64, 2, 2, PrefillKernel::MmaHeavyFirst, {1100, 70, 300}, {150, 70, 1});
  testPrefillAttention(DType::F16, 64, 8, 2, PrefillKernel::Mma, {777, 129}, {200, 129});
  // cache blocks of 12 (not a power of two; D = 128: a thread's 8 rows straddle blocks) and 5
  testPrefillAttention(DType::BF16, 128, 4, 2, PrefillKernel::Mma, {300, 70}, {130, 70}, 12);
  testPrefillAttention(DType::BF16, 64, 4, 2, PrefillKernel::Mma, {300, 70}, {130, 70}, 12);
  testPrefillAttention(DType::F16, 128, 2, 2, PrefillKernel::Mma, {300, 70}, {130, 70}, 5);
  Cublas blas(0, nullptr, 0);
  for (DType t : kAll) {
    testMatmul(t, 37, 96, 128, false, false, &blas);
    testMatmul(t, 5, 300, 512, true, false, &blas);
    for (int M : {1, 3, 8}) testMatmul(t, M, 300, 4096, false, true, nullptr);
    testMatmul(t, 2, 77, 1024, true, true, nullptr);
  }
  for (DType t : kAll) testGemvSilu(t);
  for (DType wt : {DType::BF16, DType::F16}) {
    for (int M : {1, 4}) testMatmulMixed(wt, M, 300, 4096, true, nullptr);
    testMatmulMixed(wt, 37, 96, 1024, false, &blas);
    testMatmulMixed(wt, 130, 520, 2048, false, &blas);
    testGemvSiluMixed(wt);
  }
  testArgmax();
  testSample();
  testKvPack();
  testConvertAndFill();
}

}  // namespace pds::test
