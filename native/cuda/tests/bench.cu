// Benchmarks, each reported against a ceiling measured in the same run:
//   device bandwidth: a 2 GiB device-to-device copy, (bytes read + bytes written) / time
//   cuBLAS bf16 GEMM: 8192^3 and the 2048-token MLP shape, best TFLOP/s
//   decode step batch 1 (Llama-3.1-8B and Qwen3-0.6B shapes, dummy bf16 weights, context 2048):
//     floor = (weight bytes read per token + KV bytes) / bandwidth; ratio = floor / measured
//   prefill 2048 tokens: (2 * T * linear params + causal attention flops) / time, vs cuBLAS peak
//   decode batch 32 and 64 (context 512): tokens/s
//   prefill attention alone (2048 new rows over 0 / 2048 / 6144 cached tokens): the mma.sync kernel vs the
//     WMMA one, TFLOP/s over the visible pairs; PDSERVE_BENCH_PREFILL_ONLY=1 runs only the prefill rows
//   KV gather of 7500 Llama-8B tokens at block size 16 (shuffled blocks), pinned and pageable host
//     memory, vs one contiguous device-to-host copy of the same bytes into pinned memory
// Times are medians over repeats with events or a synchronized host clock, after warm-up.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>

#include "../cublas-loader.h"
#include "../cuda-backend.h"
#include "../kernels.h"
#include "harness.h"

namespace pds::test {
namespace {

using Clock = std::chrono::steady_clock;
struct Row { std::string metric, value, ceiling, ratio; };
std::vector<Row> table;
void row(const std::string& m, const std::string& v, const std::string& c = "", const std::string& r = "") {
  table.push_back({m, v, c, r});
  std::printf("BENCH %-48s %-16s %-22s %s\n", m.c_str(), v.c_str(), c.c_str(), r.c_str());
  std::fflush(stdout);
}
std::string fmt(const char* f, double v) { char b[64]; std::snprintf(b, sizeof b, f, v); return b; }

template <typename F> double medianMs(int warm, int reps, F&& fn) {
  for (int i = 0; i < warm; ++i) fn();
  TCHECK(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = Clock::now();
    fn();
    TCHECK(cudaDeviceSynchronize());
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// ms per call of fn, launched 100 times inside one captured CUDA graph (median of 5 replays, after one eager
// call): launch overhead as in the decode graphs.
double graphLaunchMs(cudaStream_t st, const std::function<void()>& fn) {
  fn(); TCHECK(cudaStreamSynchronize(st));
  cudaGraph_t g; cudaGraphExec_t ge;
  TCHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < 100; ++i) fn();
  TCHECK(cudaStreamEndCapture(st, &g));
  TCHECK(cudaGraphInstantiate(&ge, g, 0));
  const double ms = medianMs(1, 5, [&] { TCHECK(cudaGraphLaunch(ge, st)); TCHECK(cudaStreamSynchronize(st)); }) / 100;
  cudaGraphExecDestroy(ge); cudaGraphDestroy(g);
  return ms;
}

double measureBandwidth() {
  const size_t bytes = (size_t)2 << 30;
  void *a, *b;
  TCHECK(cudaMalloc(&a, bytes)); TCHECK(cudaMalloc(&b, bytes));
  cuda::launchFillRandom(DType::F32, a, bytes / 4, 3, 1.f, 0.f, 0);
  const double ms = medianMs(2, 10, [&] { TCHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0)); });
  cudaFree(a); cudaFree(b);
  return 2.0 * bytes / (ms * 1e-3);
}

double measureGemm(cuda::Cublas& blas, int M, int N, int K) {
  void *x, *w, *y;
  TCHECK(cudaMalloc(&x, (size_t)M * K * 2)); TCHECK(cudaMalloc(&w, (size_t)N * K * 2)); TCHECK(cudaMalloc(&y, (size_t)M * N * 2));
  cuda::launchFillRandom(DType::BF16, x, (size_t)M * K, 1, 1.f, 0.f, 0);
  cuda::launchFillRandom(DType::BF16, w, (size_t)N * K, 2, 0.02f, 0.f, 0);
  const double ms = medianMs(3, 10, [&] { blas.gemm(DType::BF16, x, w, y, M, N, K, false); });
  cudaFree(x); cudaFree(w); cudaFree(y);
  return 2.0 * M * N * K / (ms * 1e-3);
}

struct Batch {  // owns the arrays of a BatchDesc
  std::vector<int32_t> ids, pos, slots, qsl{0}, ctx, bt, li;
  int maxBlocks = 0;
  BatchDesc desc() {
    BatchDesc b;
    b.numTokens = (int)ids.size(); b.numSeqs = (int)ctx.size();
    b.tokenIds = ids.data(); b.positions = pos.data(); b.slotMapping = slots.data(); b.queryStartLoc = qsl.data();
    b.contextLens = ctx.data(); b.blockTables = bt.data(); b.maxBlocksPerSeq = maxBlocks;
    b.numLogits = (int)li.size(); b.logitsIndices = li.data();
    return b;
  }
};
// Sequences s = 0..S-1 own blocks firstBlock + s*blocksPerSeq ..; each adds tokens [from, to).
Batch makeBatch(int S, int from, int to, int firstBlock, int blocksPerSeq, int vocab, bool allLogits) {
  Batch b;
  b.maxBlocks = blocksPerSeq;
  for (int s = 0; s < S; ++s) {
    for (int p = from; p < to; ++p) {
      b.ids.push_back((p * 7919 + s * 104729) % vocab); b.pos.push_back(p);
      b.slots.push_back((firstBlock + s * blocksPerSeq + p / 16) * 16 + p % 16);
      if (allLogits || p == to - 1) b.li.push_back((int32_t)b.ids.size() - 1);
    }
    b.qsl.push_back((int32_t)b.ids.size());
    b.ctx.push_back(to);
    for (int j = 0; j < blocksPerSeq; ++j) b.bt.push_back(firstBlock + s * blocksPerSeq + j);
  }
  return b;
}

// Per-kernel times of one decode step's launches (batch 1, context 2049), each launched 100 times in a
// captured graph, weights rotated over copies larger than L2 so that GEMVs read from device memory.
void kernelBreakdown(const std::string& label, const ModelSpec& s, double bw) {
  const DType dt = s.weightDtype;
  const size_t e = dtypeSize(dt);
  const int H = s.hiddenSize, I = s.intermediateSize, nH = s.numHeads, nKV = s.numKvHeads, D = s.headDim;
  const int qkvRows = (nH + 2 * nKV) * D, ctx = 2049, bs = 16, blocks = (ctx + bs - 1) / bs;
  cudaStream_t st; TCHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  auto dev = [&](size_t bytes) {
    void* p; TCHECK(cudaMalloc(&p, bytes));
    cuda::launchFillRandom(dt, p, bytes / e, bytes, 0.05f, 0.f, st);
    return p;
  };
  void *x = dev(H * e * 4 + 64), *xn = dev(H * e + 64), *qkv = dev(qkvRows * e), *attn = dev(nH * D * e), *gu = dev(2 * I * e),
       *act = dev(I * e), *lg = dev((size_t)s.vocabSize * 4), *w = dev(H * e);
  const size_t plane = (size_t)blocks * bs * nKV * D * e;
  void *kc = dev(plane), *vc = dev(plane);
  std::vector<int32_t> hostInts = {ctx - 1, (blocks - 1) * bs + (ctx - 1) % bs, 0, ctx};
  for (int j = 0; j < blocks; ++j) hostInts.push_back(j);
  int32_t* ints; TCHECK(cudaMalloc(&ints, hostInts.size() * 4));
  TCHECK(cudaMemcpy(ints, hostInts.data(), hostInts.size() * 4, cudaMemcpyHostToDevice));
  float* inv; TCHECK(cudaMalloc(&inv, D * 2)); cuda::launchFillRandom(DType::F32, inv, D / 2, 5, 0.5f, 0.5f, st);
  const int splitSize = 64, maxSplits = 64;
  float *wsO, *wsML;
  TCHECK(cudaMalloc(&wsO, (size_t)nH * maxSplits * D * 4)); TCHECK(cudaMalloc(&wsML, (size_t)nH * maxSplits * 8));
  TCHECK(cudaStreamSynchronize(st));
  auto timeIt = [&](const char* name, double bytes, const std::function<void()>& fn) {
    const double ms = graphLaunchMs(st, fn);
    row(label + " kernel " + name, fmt("%.2f us", ms * 1e3), bytes > 0 ? fmt("%.0f GB/s", bytes / (ms * 1e-3) / 1e9) : "",
        bytes > 0 ? fmt("%.2f of bw", bytes / (ms * 1e-3) / bw) : "");
  };
  auto gemvBench = [&](const char* name, int N, int K, bool f32) {
    const size_t wb = (size_t)N * K * e;
    const int copies = (int)std::max<size_t>(2, ((size_t)256 << 20) / wb + 1);
    std::vector<void*> ws;
    for (int c = 0; c < copies; ++c) ws.push_back(dev(wb));
    int c = 0;
    timeIt(name, (double)wb, [&] { cuda::launchGemv(dt, dt, xn, ws[c++ % copies], f32 ? lg : gu, 1, N, K, f32, st); });
    for (void* p : ws) cudaFree(p);
  };
  timeIt("rmsnorm+residual", 3.0 * H * e, [&] { cuda::launchRmsNorm(dt, x, attn, w, xn, nullptr, 1, H, 1e-6f, st); });
  gemvBench("gemv qkv", qkvRows, H, false);
  timeIt("qkv_prep", 0, [&] { cuda::launchQkvPrep(dt, qkv, 1, nH, nKV, D, nullptr, s.qkNorm ? w : nullptr, s.qkNorm ? w : nullptr,
                                                  1e-6f, inv, ints, ints + 1, kc, vc, st); });
  cuda::PagedAttnArgs a;
  a.q = qkv; a.qStride = qkvRows; a.kCache = kc; a.vCache = vc; a.blockTables = ints + 4; a.btStride = blocks;
  a.tokenSeq = ints + 2; a.tokenCtx = ints + 3; a.T = 1; a.nH = nH; a.nKV = nKV; a.D = D; a.blockSize = bs;
  a.scale = 0.1f; a.maxSplits = maxSplits; a.splitSize = splitSize; a.wsO = wsO; a.wsML = wsML; a.out = attn;
  timeIt("paged attention+combine ctx 2049", 2.0 * plane, [&] { cuda::launchPagedAttention(dt, a, st); });
  timeIt("attention combine alone", 0, [&] { cuda::launchAttentionCombine(dt, a, st); });
  int* ctr; TCHECK(cudaMalloc(&ctr, 4096)); TCHECK(cudaMemset(ctr, 0, 4096));
  a.counters = ctr;
  int devId = 0, sms = 0;
  TCHECK(cudaGetDevice(&devId)); TCHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, devId));
  a.splitSize = cuda::pagedAttentionFusedSplit(dt, D, nH, nKV, 1, ctx, sms);  // as the forward at b=1
  a.maxSplits = (ctx + a.splitSize - 1) / a.splitSize;
  timeIt("paged attention fused ctx 2049", 2.0 * plane, [&] { cuda::launchPagedAttentionFused(dt, a, st); });
  cudaFree(ctr);
  gemvBench("gemv o_proj", H, nH * D, false);
  gemvBench("gemv gate_up", 2 * I, H, false);
  timeIt("silu_mul", 3.0 * I * e, [&] { cuda::launchSiluMul(dt, gu, act, 1, I, st); });
  gemvBench("gemv down", H, I, false);
  gemvBench("gemv lm_head (f32 out)", s.vocabSize, H, true);
  // the fused decode GEMVs (gemv-fused.cu) that replace rmsnorm + gemv, gemv + silu, gemv + residual add
  enum class F { Norm, NormSwiGlu, Residual, QkvRope };
  auto fusedBench = [&](const char* name, F f, int N, int K) {
    const size_t wb = (size_t)(f == F::NormSwiGlu ? 2 : 1) * N * K * e;
    const int copies = (int)std::max<size_t>(2, ((size_t)256 << 20) / wb + 1);
    std::vector<void*> ws;
    for (int c = 0; c < copies; ++c) ws.push_back(dev(wb));
    int c = 0;
    timeIt(name, (double)wb, [&] {
      void* W = ws[c++ % copies];
      if (f == F::Norm) cuda::launchGemvNorm(dt, dt, x, w, 1e-6f, W, qkv, 1, N, K, st);
      else if (f == F::NormSwiGlu) cuda::launchGemvNormSwiGlu(dt, dt, x, w, 1e-6f, W, act, 1, N, K, st);
      else if (f == F::QkvRope)
        cuda::launchGemvQkvRope(dt, dt, x, w, 1e-6f, W, qkv, 1, nH, nKV, D, H, nullptr, s.qkNorm ? w : nullptr,
                                s.qkNorm ? w : nullptr, inv, ints, ints + 1, kc, vc, st);
      else cuda::launchGemvResidual(dt, dt, K == I ? act : attn, W, x, 1, N, K, st);
    });
    for (void* p : ws) cudaFree(p);
  };
  fusedBench("fused gemv_norm qkv (rmsnorm + gemv qkv)", F::Norm, qkvRows, H);
  fusedBench("fused gemv_qkv_rope (rmsnorm + gemv qkv + qkv_prep)", F::QkvRope, qkvRows, H);
  fusedBench("fused gemv_residual o_proj (gemv o_proj + residual)", F::Residual, H, nH * D);
  fusedBench("fused gemv_norm_swiglu gate_up (rmsnorm + gemv gate_up + silu)", F::NormSwiGlu, I, H);
  fusedBench("fused gemv_residual down (gemv down + residual)", F::Residual, H, I);
  for (void* p : {x, xn, qkv, attn, gu, act, lg, w, kc, vc, (void*)ints, (void*)inv, (void*)wsO, (void*)wsML}) cudaFree(p);
  cudaStreamDestroy(st);
}

// Paged attention alone at the decode shapes: two-launch kernel (split + combine) vs the fused one, each
// with the split the forward would choose (as cuda-forward.cu: ~8 blocks per SM, at most 256 tokens; the
// fused kernel at least one pass), plus fixed fused splits. KV dtype bf16 and f32.
void attentionBench(const std::string& label, int nH, int nKV, int D, int numSms, double bw) {
  cudaStream_t st; TCHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  for (DType dt : {DType::BF16, DType::F32}) {
    const size_t e = dtypeSize(dt);
    for (int T : {1, 32, 64}) {
      const int ctx = T == 1 ? 2049 : 513, bs = 16, bps = (ctx + bs - 1) / bs;
      const size_t plane = (size_t)T * bps * bs * nKV * D * e;
      void *q, *kc, *vc, *out;
      TCHECK(cudaMalloc(&q, (size_t)T * nH * D * e)); TCHECK(cudaMalloc(&out, (size_t)T * nH * D * e));
      TCHECK(cudaMalloc(&kc, plane)); TCHECK(cudaMalloc(&vc, plane));
      cuda::launchFillRandom(dt, q, (size_t)T * nH * D, 1, 1.f, 0.f, st);
      cuda::launchFillRandom(dt, kc, plane / e, 2, 1.f, 0.f, st);
      cuda::launchFillRandom(dt, vc, plane / e, 3, 1.f, 0.f, st);
      std::vector<int32_t> hi;
      for (int t = 0; t < T; ++t) hi.push_back(t);
      for (int t = 0; t < T; ++t) hi.push_back(ctx);
      for (int j = 0; j < T * bps; ++j) hi.push_back(j);
      int32_t* ints; TCHECK(cudaMalloc(&ints, hi.size() * 4));
      TCHECK(cudaMemcpy(ints, hi.data(), hi.size() * 4, cudaMemcpyHostToDevice));
      const int perTok = cuda::pagedAttentionCountersPerToken(nH, nKV);
      const int splits = std::max(1, (8 * numSms + T * perTok - 1) / (T * perTok));
      const int want = (ctx + splits - 1) / splits;
      const int oldSplit = std::min(256, std::max(32, (want + 31) / 32 * 32));
      const int newSplit = cuda::pagedAttentionFusedSplit(dt, D, nH, nKV, T, ctx, numSms);
      float *wsO, *wsML; int* ctr;
      TCHECK(cudaMalloc(&wsO, (size_t)T * nH * 80 * D * 4)); TCHECK(cudaMalloc(&wsML, (size_t)T * nH * 80 * 8));
      TCHECK(cudaMalloc(&ctr, (size_t)T * perTok * 4)); TCHECK(cudaMemset(ctr, 0, (size_t)T * perTok * 4));
      cuda::PagedAttnArgs a;
      a.q = q; a.qStride = nH * D; a.kCache = kc; a.vCache = vc; a.blockTables = ints + 2 * T; a.btStride = bps;
      a.tokenSeq = ints; a.tokenCtx = ints + T; a.T = T; a.nH = nH; a.nKV = nKV; a.D = D; a.blockSize = bs;
      a.scale = 0.1f; a.wsO = wsO; a.wsML = wsML; a.out = out; a.counters = ctr;
      TCHECK(cudaStreamSynchronize(st));
      auto timeIt = [&](const std::string& name, const std::function<void()>& fn) {
        const double ms = graphLaunchMs(st, fn);
        const double bytes = 2.0 * T * ctx * nKV * D * e;
        row(label + " attn " + (dt == DType::F32 ? "f32" : "bf16") + " b=" + std::to_string(T) + " ctx " + std::to_string(ctx) + " " + name,
            fmt("%.2f us", ms * 1e3), fmt("%.0f GB/s", bytes / (ms * 1e-3) / 1e9), fmt("%.2f of bw", bytes / (ms * 1e-3) / bw));
      };
      auto run = [&](bool fused, int split) {
        a.splitSize = split; a.maxSplits = (ctx + split - 1) / split;
        timeIt(std::string(fused ? "fused" : "2-launch") + " split " + std::to_string(split), [&] {
          if (fused) cuda::launchPagedAttentionFused(dt, a, st); else cuda::launchPagedAttention(dt, a, st);
        });
      };
      run(false, oldSplit);
      run(true, newSplit);
      for (int sp : {128, 256, 512}) if (sp != newSplit) run(true, sp);
      for (void* p : {q, kc, vc, out, (void*)ints, (void*)wsO, (void*)wsML, (void*)ctr}) cudaFree(p);
    }
  }
  cudaStreamDestroy(st);
}

// Prefill attention alone: 2048 new query rows of one sequence (64-row tiles) over `cached` tokens already in
// the paged cache (bf16, block 16, shuffled blocks), causal; the WMMA kernel vs the mma.sync one in the same
// run. FLOPs = 4 D heads x visible (query, key) pairs. Also prints the two outputs' relative L2 difference.
void prefillAttentionBench(const std::string& label, int nH, int nKV, int D) {
  const DType dt = DType::BF16;
  const int P = 2048, bs = 16;
  for (int cached : {0, 2048, 6144}) {
    const int ctx = cached + P, bps = (ctx + bs - 1) / bs;
    const size_t plane = (size_t)bps * bs * nKV * D, qn = (size_t)P * nH * D;
    void *q, *kc, *vc, *out0, *out1;
    TCHECK(cudaMalloc(&q, qn * 2)); TCHECK(cudaMalloc(&out0, qn * 2)); TCHECK(cudaMalloc(&out1, qn * 2));
    TCHECK(cudaMalloc(&kc, plane * 2)); TCHECK(cudaMalloc(&vc, plane * 2));
    cuda::launchFillRandom(dt, q, qn, 1, 1.f, 0.f, 0);
    cuda::launchFillRandom(dt, kc, plane, 2, 1.f, 0.f, 0);
    cuda::launchFillRandom(dt, vc, plane, 3, 1.f, 0.f, 0);
    std::vector<int32_t> hi = {0, P, ctx};  // queryStartLoc[2], contextLens[1]
    const int numTiles = P / cuda::kPrefillTileRows;
    for (int r = 0; r < P; r += cuda::kPrefillTileRows) { hi.push_back(0); hi.push_back(r); }
    std::vector<int32_t> blocks(bps);
    std::iota(blocks.begin(), blocks.end(), 0);
    std::shuffle(blocks.begin(), blocks.end(), std::mt19937(7));
    hi.insert(hi.end(), blocks.begin(), blocks.end());
    int32_t* ints; TCHECK(cudaMalloc(&ints, hi.size() * 4));
    TCHECK(cudaMemcpy(ints, hi.data(), hi.size() * 4, cudaMemcpyHostToDevice));
    cuda::PrefillAttnArgs a{q, nH * D, kc, vc, ints + 3 + 2 * numTiles, bps, ints + 3, numTiles, ints, ints + 2,
                            nH, nKV, D, bs, 1.f / std::sqrt((float)D), out0};
    const double pairs = (double)P * cached + (double)P * (P + 1) / 2;
    const double flops = 4.0 * D * nH * pairs;
    double msOld = 0;
    // WMMA; mma.sync with 1 head per block; 2 heads (when G is even) most keys first; 2 heads zigzag;
    // the launcher's own choices (the forward's kernel; its output is compared with WMMA's below)
    const char* names[] = {" wmma", " mma 1 head", " mma 2 heads heavy-first", " mma 2 heads zigzag", " mma default"};
    for (int variant = 0; variant < 5; ++variant) {
      if ((variant == 2 || variant == 3) && (nH / nKV) % 2) continue;
      a.out = variant == 0 ? out0 : out1;
      const double ms = medianMs(3, 20, [&] {
        if (variant == 0) cuda::launchPrefillAttentionWmma(dt, a, 0);
        else cuda::launchPrefillAttentionMma(dt, a, 0, variant == 1 ? 1 : 0, variant == 2 ? 0 : variant == 3 ? 1 : -1);
      });
      if (variant == 0) msOld = ms;
      row(label + " prefill attn 2048 over " + std::to_string(cached) + names[variant], fmt("%.1f us", ms * 1e3),
          fmt("%.0f TFLOP/s", flops / (ms * 1e-3) / 1e12), variant ? fmt("%.2fx of wmma", msOld / ms) : "");
    }
    std::vector<uint16_t> h0(qn), h1(qn);
    TCHECK(cudaMemcpy(h0.data(), out0, qn * 2, cudaMemcpyDeviceToHost));
    TCHECK(cudaMemcpy(h1.data(), out1, qn * 2, cudaMemcpyDeviceToHost));
    auto bf = [](uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; std::memcpy(&f, &u, 4); return (double)f; };
    double dd = 0, nn = 0;
    for (size_t i = 0; i < qn; ++i) { const double x = bf(h0[i]), y = bf(h1[i]); dd += (x - y) * (x - y); nn += x * x; }
    row(label + " prefill attn 2048 over " + std::to_string(cached) + " mma vs wmma", fmt("%.2e rel L2", std::sqrt(dd / nn)));
    for (void* p : {q, kc, vc, out0, out1, (void*)ints}) cudaFree(p);
  }
}

// kvDt: the KV cache dtype (= activations); f32 with bf16 weights is the f32-compute mode.
void benchModel(const std::string& label, const ModelSpec& spec, double bw, double gemmPeak, bool kvGatherBench,
                DType kvDt) {
  BackendOptions o; o.device = "cuda:0";
  cuda::CudaBackend be(spec, o);
  be.initDummyWeights(11);
  be.finalizeWeights();
  const int numBlocks = 4096;
  be.allocKvCache(numBlocks, 16, kvDt);
  const int V = spec.vocabSize;
  std::vector<float> logits((size_t)64 * V);
  const size_t e = dtypeSize(spec.weightDtype);
  const double linearParams = (double)(be.weightBytes() / e) - (double)V * spec.hiddenSize;  // lm_head: 1 row

  // prefill 2048 (sequence 0, blocks 0..127)
  const int P = 2048;
  Batch pre = makeBatch(1, 0, P, 0, 160, V, false);
  BatchDesc pd = pre.desc();
  const double preMs = medianMs(1, 5, [&] { be.forward(pd, logits.data()); });
  const double attnFlops = 4.0 * spec.numLayers * spec.numHeads * spec.headDim * (double)P * (P + 1) / 2;
  const double preFlops = 2.0 * P * linearParams + attnFlops + 2.0 * V * spec.hiddenSize;
  row(label + " prefill 2048 tok", fmt("%.1f ms", preMs), "cuBLAS " + fmt("%.0f TFLOP/s", gemmPeak / 1e12),
      fmt("%.0f TFLOP/s = ", preFlops / (preMs * 1e-3) / 1e12) + fmt("%.2f of peak", preFlops / (preMs * 1e-3) / gemmPeak));
  {  // the same with the first (WMMA) prefill attention kernel, for the before/after ratio
    setenv("PDSERVE_PREFILL_ATTN", "wmma", 1);
    const double ms = medianMs(1, 5, [&] { be.forward(pd, logits.data()); });
    unsetenv("PDSERVE_PREFILL_ATTN");
    row(label + " prefill 2048 tok, wmma attention", fmt("%.1f ms", ms), "",
        fmt("%.0f TFLOP/s = ", preFlops / (ms * 1e-3) / 1e12) + fmt("%.2f of peak", preFlops / (ms * 1e-3) / gemmPeak));
  }
  if (kvDt != DType::F32) {  // a chunk of 2048 over 6144 cached tokens (chunked prefill of a long prompt), both kernels
    const int cached = 6144, bps = (cached + P) / 16;
    for (int c0 = 0; c0 < cached; c0 += P) {  // fill the cache the chunk attends to
      Batch fill = makeBatch(1, c0, c0 + P, 0, bps, V, false);
      BatchDesc fd = fill.desc();
      be.forward(fd, logits.data());
    }
    Batch chunk = makeBatch(1, cached, cached + P, 0, bps, V, false);
    BatchDesc cd = chunk.desc();
    const double ms = medianMs(1, 5, [&] { be.forward(cd, logits.data()); });
    setenv("PDSERVE_PREFILL_ATTN", "wmma", 1);
    const double msOld = medianMs(1, 5, [&] { be.forward(cd, logits.data()); });
    unsetenv("PDSERVE_PREFILL_ATTN");
    row(label + " prefill chunk 2048 over 6144 cached", fmt("%.1f ms", ms), "wmma attention " + fmt("%.1f ms", msOld),
        fmt("%.2fx", msOld / ms));
  }
  if (std::getenv("PDSERVE_BENCH_PREFILL_ONLY")) return;

  // decode batch 1 at context 2048 -> 2049
  Batch dec = makeBatch(1, P, P + 1, 0, 160, V, true);
  BatchDesc dd = dec.desc();
  const size_t weightRead = be.weightBytes() - (spec.tieWordEmbeddings ? 0 : (size_t)V * spec.hiddenSize * e);
  const double floorMs = (weightRead + (double)(P + 1) * be.kvBytesPerToken()) / bw * 1e3;
  struct Cfg { const char* name; bool graphs; int gemv; };
  for (Cfg c : {Cfg{"graphs+gemv", true, 4}, Cfg{"graphs+cuBLAS", true, 0}, Cfg{"eager+gemv", false, 4}}) {
    be.setUseGraphs(c.graphs); be.setGemvMaxRows(c.gemv);
    const double ms = medianMs(3, 30, [&] { be.forward(dd, logits.data()); });
    row(label + " decode b=1 " + c.name, fmt("%.3f ms", ms), "floor " + fmt("%.3f ms", floorMs), fmt("%.2f of floor", floorMs / ms));
  }
  {  // the same with the two-launch attention (PDSERVE_CUDA_FUSED_ATTN_TOKENS=0), for the before/after ratio
    be.setUseGraphs(true); be.setGemvMaxRows(4);
    setenv("PDSERVE_CUDA_FUSED_ATTN_TOKENS", "0", 1);
    const double ms = medianMs(3, 30, [&] { be.forward(dd, logits.data()); });
    unsetenv("PDSERVE_CUDA_FUSED_ATTN_TOKENS");
    row(label + " decode b=1 graphs+gemv, 2-launch attention", fmt("%.3f ms", ms), "floor " + fmt("%.3f ms", floorMs),
        fmt("%.2f of floor", floorMs / ms));
  }
  be.setUseGraphs(true); be.setGemvMaxRows(4);

  // decode batch 32 / 64 at context 512 (blocks 160.. , 33 per sequence)
  for (int S : {32, 64}) {
    for (int s0 = 0; s0 < S; s0 += 4) {
      Batch fill = makeBatch(4, 0, 512, 160 + s0 * 33, 33, V, false);
      BatchDesc fd = fill.desc();
      be.forward(fd, logits.data());
    }
    Batch step = makeBatch(S, 512, 513, 160, 33, V, true);
    BatchDesc sd = step.desc();
    for (bool twoLaunch : {false, true}) {  // default path, then split + combine attention forced
      if (twoLaunch) setenv("PDSERVE_CUDA_FUSED_ATTN_TOKENS", "0", 1);
      const double ms = medianMs(3, 20, [&] { be.forward(sd, logits.data()); });
      unsetenv("PDSERVE_CUDA_FUSED_ATTN_TOKENS");
      row(label + " decode b=" + std::to_string(S) + " ctx 512" + (twoLaunch ? ", 2-launch attention" : ""),
          fmt("%.0f tok/s", S / (ms * 1e-3)), fmt("%.2f ms/step", ms), "");
    }
  }

  if (kvGatherBench) {
    const int N = 7500, used = (N + 15) / 16;
    std::vector<int32_t> ids(numBlocks); std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(5));
    ids.resize(used);
    const size_t bytes = (size_t)N * be.kvBytesPerToken();
    void* pinned; TCHECK(cudaHostAlloc(&pinned, bytes, cudaHostAllocDefault));
    std::vector<uint8_t> pageable(bytes, 1);
    void* dev; TCHECK(cudaMalloc(&dev, bytes));
    const double contig = medianMs(1, 5, [&] { TCHECK(cudaMemcpy(pinned, dev, bytes, cudaMemcpyDeviceToHost)); });
    const double gp = medianMs(1, 5, [&] { be.kvGather(ids.data(), used, N, pinned); });
    const double gq = medianMs(1, 3, [&] { be.kvGather(ids.data(), used, N, pageable.data()); });
    const double sp = medianMs(1, 5, [&] { be.kvScatter(ids.data(), used, N, pinned); });
    const double sq = medianMs(1, 3, [&] { be.kvScatter(ids.data(), used, N, pageable.data()); });
    const std::string ref = "contiguous " + fmt("%.1f ms", contig) + fmt(" (%.1f GB/s)", bytes / (contig * 1e-3) / 1e9);
    row("KV gather 7500 tok Llama-8B (" + fmt("%.0f MB", bytes / 1e6) + ") pinned", fmt("%.1f ms", gp), ref, fmt("%.2f of contiguous", contig / gp));
    row("KV gather 7500 tok Llama-8B pageable", fmt("%.1f ms", gq), ref, fmt("%.2f of contiguous", contig / gq));
    row("KV scatter 7500 tok Llama-8B pinned", fmt("%.1f ms", sp), ref, fmt("%.2f of contiguous", contig / sp));
    row("KV scatter 7500 tok Llama-8B pageable", fmt("%.1f ms", sq), ref, fmt("%.2f of contiguous", contig / sq));
    cudaFreeHost(pinned); cudaFree(dev);
  }
}

}  // namespace

void runBenchmarks(bool full) {
  cudaDeviceProp prop;
  TCHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, %.1f GiB\n", prop.name, prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0);
  const double bw = measureBandwidth();
  row("device bandwidth (2 GiB D2D, read+write)", fmt("%.0f GB/s", bw / 1e9));
  cuda::Cublas blas(0, nullptr, 0);
  const double g1 = measureGemm(blas, 8192, 8192, 8192), g2 = measureGemm(blas, 2048, 28672, 4096);
  row("cuBLAS bf16 GEMM 8192^3", fmt("%.0f TFLOP/s", g1 / 1e12));
  row("cuBLAS bf16 GEMM 2048x28672x4096", fmt("%.0f TFLOP/s", g2 / 1e12));
  const double peak = std::max(g1, g2);

  ModelSpec qwen;
  qwen.numLayers = 28; qwen.hiddenSize = 1024; qwen.intermediateSize = 3072; qwen.numHeads = 16; qwen.numKvHeads = 8;
  qwen.headDim = 128; qwen.vocabSize = 151936; qwen.rmsNormEps = 1e-6f; qwen.ropeTheta = 1e6f; qwen.qkNorm = true;
  qwen.tieWordEmbeddings = true; qwen.weightDtype = DType::BF16;
  // PDSERVE_BENCH_PREFILL_ONLY=1: only the prefill rows (attention alone, then the bf16 models' prefill 2048)
  const bool prefillOnly = std::getenv("PDSERVE_BENCH_PREFILL_ONLY") != nullptr;
  // PDSERVE_BENCH_DECODE_KERNELS=1: only the per-kernel decode rows, Qwen3-0.6B, Qwen3-4B and Llama-3.1-8B shapes
  if (std::getenv("PDSERVE_BENCH_DECODE_KERNELS")) {
    ModelSpec q4 = qwen;
    q4.numLayers = 36; q4.hiddenSize = 2560; q4.intermediateSize = 9728; q4.numHeads = 32;
    ModelSpec l8 = qwen;
    l8.numLayers = 32; l8.hiddenSize = 4096; l8.intermediateSize = 14336; l8.numHeads = 32; l8.vocabSize = 128256;
    l8.qkNorm = false; l8.tieWordEmbeddings = false;
    kernelBreakdown("Qwen3-0.6B", qwen, bw);
    kernelBreakdown("Qwen3-4B", q4, bw);
    kernelBreakdown("Llama-3.1-8B", l8, bw);
    std::printf("\n%-52s | %-16s | %-30s | %s\n", "metric", "value", "ceiling / reference", "ratio");
    for (auto& r : table) std::printf("%-52s | %-16s | %-30s | %s\n", r.metric.c_str(), r.value.c_str(), r.ceiling.c_str(), r.ratio.c_str());
    return;
  }
  prefillAttentionBench("Qwen3-0.6B", 16, 8, 128);
  prefillAttentionBench("Llama-3.1-8B", 32, 8, 128);
  if (!prefillOnly) {
    attentionBench("Qwen3-0.6B", 16, 8, 128, prop.multiProcessorCount, bw);
    attentionBench("Llama-3.1-8B", 32, 8, 128, prop.multiProcessorCount, bw);
    kernelBreakdown("Qwen3-0.6B", qwen, bw);
  }
  benchModel("Qwen3-0.6B", qwen, bw, peak, false, DType::BF16);
  if (!prefillOnly) benchModel("Qwen3-0.6B bf16+f32kv", qwen, bw, peak, false, DType::F32);
  if (full) {
    ModelSpec llama;
    llama.numLayers = 32; llama.hiddenSize = 4096; llama.intermediateSize = 14336; llama.numHeads = 32; llama.numKvHeads = 8;
    llama.headDim = 128; llama.vocabSize = 128256; llama.rmsNormEps = 1e-5f; llama.ropeTheta = 500000.f;
    llama.ropeType = RopeType::Llama3; llama.ropeFactor = 8; llama.ropeOriginalMaxPos = 8192;
    llama.weightDtype = DType::BF16;
    if (!prefillOnly) kernelBreakdown("Llama-3.1-8B", llama, bw);
    benchModel("Llama-3.1-8B", llama, bw, peak, !prefillOnly, DType::BF16);
    if (!prefillOnly) benchModel("Llama-3.1-8B bf16+f32kv", llama, bw, peak, false, DType::F32);
  }
  std::printf("\n%-52s | %-16s | %-30s | %s\n", "metric", "value", "ceiling / reference", "ratio");
  for (auto& r : table) std::printf("%-52s | %-16s | %-30s | %s\n", r.metric.c_str(), r.value.c_str(), r.ceiling.c_str(), r.ratio.c_str());
}

}  // namespace pds::test
