// Attention kernel tests: paged decode attention (split + combine, fused) and prefill attention (declared in kernel-tests.h; run in order by runKernelTests, kernel-tests.cu).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../kernels.h"
#include "kernel-tests.h"

namespace pds::test::kernels {
using namespace pds::cuda;

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
void testPagedAttention(DType t, int D, int nH, int nKV, int splitSize, bool fused, std::vector<int> ctx,
                        std::vector<int> nNew) {
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

void testPrefillAttention(DType t, int D, int nH, int nKV, PrefillKernel kernel, std::vector<int> ctx,
                          std::vector<int> nNew, int blockSize) {
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

}  // namespace pds::test::kernels
