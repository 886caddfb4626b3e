// CudaBackend::forward: validates the batch on the host (pds/batch-check.h), uploads its int arrays in one copy, runs the
// model (as a replayed CUDA graph for pure decode batches seen before), and downloads f32 logits.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "common.cuh"
#include "cuda-backend.h"
#include "kernels.h"
#include "pds/batch-check.h"

namespace pds::cuda {

// Offsets are in int32 elements into devInts_ (and the pinned hostInts_ it is copied from).
struct CudaBackend::Plan {
  int T = 0, S = 0, R = 0, btStride = 0, numTiles = 0, maxSplits = 0, splitSize = 0;
  bool decode = false, prefillKernel = false, fusedAttn = false;
  size_t ids = 0, pos = 0, slots = 0, qsl = 0, ctx = 0, bt = 0, logitIdx = 0, tokSeq = 0, tokCtx = 0, tiles = 0,
         total = 0;
  const int32_t* dev = nullptr;
  const int32_t* at(size_t off) const { return dev + off; }
};

namespace {

[[noreturn]] void badBatch(const std::string& m) { throw std::runtime_error("CUDA backend: forward: " + m); }

constexpr int kMaxGraphTokens = 512;
constexpr size_t kMaxGraphs = 48;
constexpr size_t kAttnWorkspaceBytes = (size_t)64 << 20;
// Split-merge counters of the fused paged attention, at the end of wsML_: zeroed once at allocation, every
// launch leaves them zeroed.
constexpr size_t kAttnCounterInts = (size_t)1 << 18;

// Paged attention path: the one-launch kernel (launchPagedAttentionFused) for f16/bf16 on tensor cores at
// any batch, and on CUDA cores (other head dims) for batches of at most 8 tokens; else split + combine
// (launchPagedAttention: measured faster with f32 KV, and for large batches on CUDA cores).
// PDSERVE_CUDA_FUSED_ATTN_TOKENS=n overrides: fused for f16/bf16 batches of at most n tokens (0 = never).
bool useFusedAttention(DType t, int D, int T) {
  if (t == DType::F32) return false;
  const char* e = std::getenv("PDSERVE_CUDA_FUSED_ATTN_TOKENS");
  if (e && *e) return T <= std::atoi(e);
  return pagedAttentionTensorCores(t, D) || T <= 8;
}

}  // namespace

void CudaBackend::clearGraphs() {
  for (auto& [k, g] : graphs_) if (g.exec) cudaGraphExecDestroy(g.exec);
  graphs_.clear();
}

// y[M, N] = x[M, K] W[N, K]^T. Same dtype: x and y in the weight dtype (y f32 when outF32). f32 compute over
// bf16/f16 weights (mixed()): x and y f32; the GEMV reads f32 x directly; cuBLAS needs both operands in the
// weight dtype, so x is split into hi = (T) x and lo = (T) (x - hi) and y = hi W^T + lo W^T (two GEMMs,
// ~16 mantissa bits of x: measured in NOTES.md, one rounded operand alone breaks the fixtures' bf16 rule).
void CudaBackend::linear(const void* x, const void* w, void* y, int M, int N, int K, bool outF32) {
  const DType wt = spec_.weightDtype;
  if (M <= gemvMaxRows_ && K % (16 / (int)elem_) == 0) { launchGemv(actDt_, wt, x, w, y, M, N, K, outF32, stream_); return; }
  if (!mixed()) { blas_->gemm(wt, x, w, y, M, N, K, outF32); return; }
  const size_t n = (size_t)M * K;
  if (hiLo_.bytes() < 2 * n * elem_) badBatch("internal: operand split buffer too small");
  char* hi = hiLo_.as<char>();
  char* lo = hi + n * elem_;
  launchSplitHiLo(wt, (const float*)x, hi, lo, n, stream_);
  blas_->gemm(wt, hi, w, y, M, N, K, true);
  blas_->gemm(wt, lo, w, y, M, N, K, true, 0, true);
}

void CudaBackend::attention(const Plan& p, int layer, const void* kc, const void* vc) {
  (void)layer;
  const int nH = spec_.numHeads, D = spec_.headDim;
  const float scale = 1.f / std::sqrt((float)D);
  if (p.prefillKernel) {
    PrefillAttnArgs a{qkv_.get(), qkvRows_, kc, vc, p.at(p.bt), p.btStride, p.at(p.tiles), p.numTiles,
                      p.at(p.qsl), p.at(p.ctx), nH, spec_.numKvHeads, D, blockSize_, scale, attn_.get()};
    launchPrefillAttention(actDt_, a, stream_);
    return;
  }
  const size_t perToken = (size_t)nH * p.maxSplits * D * sizeof(float);
  const int ctrPerToken = pagedAttentionCountersPerToken(nH, spec_.numKvHeads);
  const int chunk = (int)std::min<size_t>({65535, std::max<size_t>(1, wsO_.bytes() / perToken),  // grid.z limit
                                           kAttnCounterInts / ctrPerToken});
  int* counters = (int*)((char*)wsML_.get() + wsML_.bytes() - kAttnCounterInts * sizeof(int));
  for (int t0 = 0; t0 < p.T; t0 += chunk) {
    PagedAttnArgs a;
    a.q = (const char*)qkv_.get() + (size_t)t0 * qkvRows_ * aElem_;
    a.qStride = qkvRows_;
    a.kCache = kc; a.vCache = vc;
    a.blockTables = p.at(p.bt); a.btStride = p.btStride;
    a.tokenSeq = p.at(p.tokSeq) + t0; a.tokenCtx = p.at(p.tokCtx) + t0;
    a.T = std::min(chunk, p.T - t0);
    a.nH = nH; a.nKV = spec_.numKvHeads; a.D = D; a.blockSize = blockSize_;
    a.scale = scale; a.maxSplits = p.maxSplits; a.splitSize = p.splitSize;
    a.wsO = wsO_.as<float>(); a.wsML = wsML_.as<float>();
    a.out = (char*)attn_.get() + (size_t)t0 * nH * D * aElem_;
    a.counters = counters;
    if (p.fusedAttn) launchPagedAttentionFused(actDt_, a, stream_);
    else launchPagedAttention(actDt_, a, stream_);
  }
}

void CudaBackend::runModel(const Plan& p) {
  const DType dt = actDt_;  // element-wise kernels, attention and the KV cache
  const int H = spec_.hiddenSize, I = spec_.intermediateSize, nH = spec_.numHeads, nKV = spec_.numKvHeads,
            D = spec_.headDim, T = p.T;
  const float eps = spec_.rmsNormEps;
  const size_t plane = (size_t)numBlocks_ * blockSize_ * nKV * D * aElem_;
  check(cudaMemsetAsync(errFlag_.get(), 0, sizeof(int), stream_), "clear error flag");
  launchEmbedding(spec_.weightDtype, dt, p.at(p.ids), T, embed_, spec_.vocabSize, H, x_.get(), errFlag_.as<int>(), stream_);
  const int numLayers = debugLayers_ > 0 ? std::min(debugLayers_, spec_.numLayers) : spec_.numLayers;
  // Small decode batches: 5 launches per layer instead of 8 (gemv-fused.cu, gemv-qkv-rope.cu): the RMSNorms
  // become prologues of the qkv and gate/up GEMVs, qkv prep (bias, q/k norm, RoPE, KV write) the qkv GEMV's
  // epilogue, SiLU-mul the gate/up GEMV's, and the residual adds the o_proj and down GEMVs' epilogues
  // (x_ always holds the whole residual stream). Level 1: qkv prep stays a launch of its own (6).
  const int vec = 16 / (int)elem_;
  if (fusedDecode_ && T <= gemvMaxRows_ && H % vec == 0 && I % vec == 0 && (nH * D) % vec == 0) {
    const DType wt = spec_.weightDtype;
    const bool qkvRope = fusedDecode_ >= 2 && gemvQkvRopeSupported(D);
    for (int l = 0; l < numLayers; ++l) {
      const Layer& L = run_[l];
      char* kc = (char*)kv_.get() + (size_t)(2 * l) * plane;
      char* vc = kc + plane;
      if (qkvRope) {
        launchGemvQkvRope(dt, wt, x_.get(), L.inNorm, eps, L.qkv, qkv_.get(), T, nH, nKV, D, H, L.qkvBias, L.qNorm,
                          L.kNorm, invFreq_.as<float>(), p.at(p.pos), p.at(p.slots), kc, vc, stream_);
      } else {
        launchGemvNorm(dt, wt, x_.get(), L.inNorm, eps, L.qkv, qkv_.get(), T, qkvRows_, H, stream_);
        launchQkvPrep(dt, qkv_.get(), T, nH, nKV, D, L.qkvBias, L.qNorm, L.kNorm, eps, invFreq_.as<float>(),
                      p.at(p.pos), p.at(p.slots), kc, vc, stream_);
      }
      attention(p, l, kc, vc);
      launchGemvResidual(dt, wt, attn_.get(), L.o, x_.get(), T, H, nH * D, stream_);
      launchGemvNormSwiGlu(dt, wt, x_.get(), L.postNorm, eps, L.gateUp, act_.get(), T, I, H, stream_);
      launchGemvResidual(dt, wt, act_.get(), L.down, x_.get(), T, H, I, stream_);
    }
    if (p.R > 0) {
      launchRmsNorm(dt, x_.get(), nullptr, runFinalNorm_, xnR_.get(), p.at(p.logitIdx), p.R, H, eps, stream_);
      linear(xnR_.get(), lmHead_, logits_.get(), p.R, spec_.vocabSize, H, true);
    }
    return;
  }
  for (int l = 0; l < numLayers; ++l) {
    const Layer& L = run_[l];
    launchRmsNorm(dt, x_.get(), l ? ao_.get() : nullptr, L.inNorm, xn_.get(), nullptr, T, H, eps, stream_);
    linear(xn_.get(), L.qkv, qkv_.get(), T, qkvRows_, H, false);
    char* kc = (char*)kv_.get() + (size_t)(2 * l) * plane;
    char* vc = kc + plane;
    launchQkvPrep(dt, qkv_.get(), T, nH, nKV, D, L.qkvBias, L.qNorm, L.kNorm, eps, invFreq_.as<float>(),
                  p.at(p.pos), p.at(p.slots), kc, vc, stream_);
    attention(p, l, kc, vc);
    linear(attn_.get(), L.o, ao_.get(), T, H, nH * D, false);
    launchRmsNorm(dt, x_.get(), ao_.get(), L.postNorm, xn_.get(), nullptr, T, H, eps, stream_);
    linear(xn_.get(), L.gateUp, gu_.get(), T, 2 * I, H, false);
    // Decode: SiLU fused into the down GEMV when the recomputation per output row is cheap (measured: a win
    // at I = 3072, a loss at I = 14336).
    if (T <= gemvMaxRows_ && I % (16 / (int)elem_) == 0 && I <= 4096) {
      launchGemvSilu(dt, spec_.weightDtype, gu_.get(), L.down, ao_.get(), T, H, I, stream_);
    } else {
      launchSiluMul(dt, gu_.get(), act_.get(), T, I, stream_);
      linear(act_.get(), L.down, ao_.get(), T, H, I, false);
    }
  }
  if (p.R > 0) {
    launchRmsNorm(dt, x_.get(), ao_.get(), runFinalNorm_, xnR_.get(), p.at(p.logitIdx), p.R, H, eps, stream_);
    linear(xnR_.get(), lmHead_, logits_.get(), p.R, spec_.vocabSize, H, true);
  }
}

namespace {
// PDSERVE_TRACE_FORWARD=1: every 20th forward prints host prep / enqueue / wait-for-GPU times.
bool traceForward() {
  static const bool on = [] { const char* e = std::getenv("PDSERVE_TRACE_FORWARD"); return e && *e == '1'; }();
  return on;
}
double usBetween(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}
}  // namespace

void CudaBackend::forward(const BatchDesc& b, float* logitsOut) {
  forwardBegin(b, logitsOut);
  forwardEnd();
}

bool CudaBackend::forwardReady() {
  std::lock_guard<std::mutex> lk(computeMu_);
  if (!pending_.active) return true;
  const cudaError_t e = cudaEventQuery(doneEvent_);
  if (e == cudaErrorNotReady) return false;
  if (e != cudaSuccess) cudaGetLastError();  // forwardEnd reports it
  return true;
}

void CudaBackend::forwardEnd() {
  std::lock_guard<std::mutex> lk(computeMu_);
  if (!pending_.active) return;
  Pending p = pending_;
  pending_ = Pending{};
  check(cudaSetDevice(device_), "cudaSetDevice");
  check(cudaEventSynchronize(doneEvent_), "forward");
  if (traceForward()) {
    static int calls = 0;
    if (++calls % 20 == 0)
      std::fprintf(stderr, "cuda forward trace (T=%d%s): prep %.0f us, enqueue %.0f us, wait %.0f us\n", p.T,
                   p.graph ? ", graph" : "", usBetween(p.tEntry, p.tPrepared), usBetween(p.tPrepared, p.tEnqueued),
                   usBetween(p.tEnqueued, std::chrono::steady_clock::now()));
  }
  if (hostInts_.as<int32_t>()[p.flagOff]) badBatch("token id out of range (device check)");
  if (p.logitBytes) std::memcpy(p.logitsOut, hostLogits_.get(), p.logitBytes);
  if (p.sampled) std::memcpy(p.sampled, sampleHost_.as<char>() + p.paramBytes, (size_t)p.R * sizeof(int32_t));
}

void CudaBackend::forwardBegin(const BatchDesc& b, float* logitsOut) {
  using Clock = std::chrono::steady_clock;
  const bool trace = traceForward();
  const Clock::time_point tEntry = trace ? Clock::now() : Clock::time_point{};
  Clock::time_point tPrepared;
  std::lock_guard<std::mutex> lk(computeMu_);
  if (pending_.active) badBatch("a forward is already in flight (call forwardEnd first)");
  check(cudaSetDevice(device_), "cudaSetDevice");
  requireReady("forward");
  const int T = b.numTokens, S = b.numSeqs, R = b.numLogits, bs = blockSize_;
  const BatchFacts facts = checkBatch(b, spec_.vocabSize, KvGeometry{numBlocks_, bs}, logitsOut != nullptr);
  const bool decode = facts.decode;
  const int maxCtx = facts.maxContext;

  Plan p;
  p.T = T; p.S = S; p.R = R; p.decode = decode;
  const bool graph = useGraphs_ && decode && T <= kMaxGraphTokens;
  // Graphs are keyed on the block-table stride: rounded up to 32 blocks so that a graph serves a range
  // of context lengths while the attention grid (sized from it) stays close to the real context.
  p.btStride = graph ? (b.maxBlocksPerSeq + 31) / 32 * 32 : b.maxBlocksPerSeq;
  const int ctxCap = graph ? p.btStride * bs : maxCtx;
  {
    // Split + combine: split the context so that the grid has ~8 blocks per SM (decode at small batch is
    // otherwise latency-bound on a few blocks), in multiples of 32 tokens, at most splitSize_. The fused
    // kernel chooses its own (pagedAttentionFusedSplit).
    const DType kvDt = actDt_;  // the KV cache's dtype: the paged kernels' element type
    p.fusedAttn = useFusedAttention(kvDt, spec_.headDim, T);
    if (p.fusedAttn) {
      p.splitSize = pagedAttentionFusedSplit(kvDt, spec_.headDim, spec_.numHeads, spec_.numKvHeads, T, ctxCap, numSms_);
    } else {
      const int perSplit = T * pagedAttentionCountersPerToken(spec_.numHeads, spec_.numKvHeads);
      const int splits = std::max(1, (8 * numSms_ + perSplit - 1) / perSplit);
      const int want = (ctxCap + splits - 1) / splits;
      p.splitSize = std::min(splitSize_, std::max(32, (want + 31) / 32 * 32));
    }
  }
  p.maxSplits = (ctxCap + p.splitSize - 1) / p.splitSize;
  p.prefillKernel = !decode && prefillAttentionSupported(actDt_, spec_.headDim);
  if (p.prefillKernel)
    for (int s = 0; s < S; ++s) p.numTiles += (b.queryStartLoc[s + 1] - b.queryStartLoc[s] + kPrefillTileRows - 1) / kPrefillTileRows;
  size_t off = 0;
  auto take = [&](size_t n) { const size_t o = off; off += (n + 3) & ~size_t(3); return o; };  // 16-byte aligned
  p.ids = take(T); p.pos = take(T); p.slots = take(T); p.qsl = take(S + 1); p.ctx = take(S);
  p.bt = take((size_t)S * p.btStride); p.logitIdx = take(R); p.tokSeq = take(T); p.tokCtx = take(T);
  p.tiles = take(2 * (size_t)p.numTiles);
  p.total = off;
  const size_t flagOff = take(1);

  hostInts_.ensure((off) * sizeof(int32_t), "forward inputs");
  int32_t* h = hostInts_.as<int32_t>();
  std::copy(b.tokenIds, b.tokenIds + T, h + p.ids);
  std::copy(b.positions, b.positions + T, h + p.pos);
  std::copy(b.slotMapping, b.slotMapping + T, h + p.slots);
  std::copy(b.queryStartLoc, b.queryStartLoc + S + 1, h + p.qsl);
  std::copy(b.contextLens, b.contextLens + S, h + p.ctx);
  for (int s = 0; s < S; ++s) {
    int32_t* dst = h + p.bt + (size_t)s * p.btStride;
    const int32_t* src = b.blockTables + (size_t)s * b.maxBlocksPerSeq;
    const int n = std::min(b.maxBlocksPerSeq, p.btStride);
    std::copy(src, src + n, dst);
    std::fill(dst + n, dst + p.btStride, 0);
  }
  if (R) std::copy(b.logitsIndices, b.logitsIndices + R, h + p.logitIdx);
  int tile = 0;
  for (int s = 0; s < S; ++s) {
    const int q0 = b.queryStartLoc[s], n = b.queryStartLoc[s + 1] - q0, ctx = b.contextLens[s];
    for (int i = 0; i < n; ++i) { h[p.tokSeq + q0 + i] = s; h[p.tokCtx + q0 + i] = ctx - n + i + 1; }
    if (p.prefillKernel)
      for (int r = 0; r < n; r += kPrefillTileRows) { h[p.tiles + 2 * tile] = s; h[p.tiles + 2 * tile + 1] = r; ++tile; }
  }

  // Device buffers: growth moves them, which invalidates captured graphs.
  bool moved = devInts_.ensure(p.total * sizeof(int32_t) + 4096, "forward inputs");
  if (T > (int)capTokens_) {
    const size_t cap = std::max<size_t>(16, ((size_t)T + 63) / 64 * 64);
    const int H = spec_.hiddenSize, I = spec_.intermediateSize;
    const size_t e = aElem_, nHD = (size_t)spec_.numHeads * spec_.headDim;
    x_.alloc(cap * H * e, "activations"); xn_.alloc(cap * H * e, "activations");
    qkv_.alloc(cap * qkvRows_ * e, "activations");
    attn_.alloc(cap * nHD * e, "activations");
    ao_.alloc(cap * H * e, "activations"); gu_.alloc(cap * 2 * I * e, "activations");
    act_.alloc(cap * I * e, "activations");
    if (mixed()) hiLo_.alloc(2 * cap * std::max<size_t>({(size_t)H, (size_t)I, nHD}) * elem_, "GEMM operand split");
    else hiLo_.reset();
    capTokens_ = cap;
    moved = true;
  }
  if (R > (int)capLogits_) {
    const size_t cap = std::max<size_t>(8, ((size_t)R + 7) / 8 * 8);
    xnR_.alloc(cap * spec_.hiddenSize * aElem_, "logit rows");
    logits_.alloc(cap * spec_.vocabSize * sizeof(float), "logits");
    capLogits_ = cap;
    moved = true;
  }
  if (!wsO_.get()) {
    wsO_.alloc(kAttnWorkspaceBytes, "attention workspace");
    wsML_.alloc(kAttnWorkspaceBytes * 2 / spec_.headDim + 4096 + kAttnCounterInts * sizeof(int), "attention workspace");
    check(cudaMemsetAsync((char*)wsML_.get() + wsML_.bytes() - kAttnCounterInts * sizeof(int), 0,
                          kAttnCounterInts * sizeof(int), stream_), "clear attention counters");
  }
  if (p.maxSplits > 1024) badBatch("context too long (" + std::to_string(maxCtx) + " tokens)");
  if ((size_t)spec_.numHeads * p.maxSplits * spec_.headDim * sizeof(float) > wsO_.bytes())
    badBatch("context too long for the attention workspace");
  if (moved) clearGraphs();
  p.dev = devInts_.as<int32_t>();

  if (trace) tPrepared = Clock::now();
  check(cudaMemcpyAsync(devInts_.get(), h, p.total * sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "upload inputs");
  bool ran = false;
  if (graph) {
    const std::vector<int64_t> key = {T, R, p.btStride, p.maxSplits, p.splitSize, gemvMaxRows_, p.fusedAttn};
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      if (graphs_.size() >= kMaxGraphs) {
        auto lru = graphs_.begin();
        for (auto j = graphs_.begin(); j != graphs_.end(); ++j) if (j->second.lastUse < lru->second.lastUse) lru = j;
        if (lru->second.exec) cudaGraphExecDestroy(lru->second.exec);
        graphs_.erase(lru);
      }
      it = graphs_.emplace(key, Graph{}).first;
    }
    Graph& g = it->second;
    g.lastUse = ++graphClock_;
    // A shape's first batch runs eagerly (it also sets kernel attributes); the second one is captured.
    if (!g.exec && ++g.seen >= 2) g.exec = capture(p);
    if (g.exec) { check(cudaGraphLaunch(g.exec, stream_), "graph launch"); ran = true; }
  }
  if (!ran) runModel(p);
  // Token choice on the device: only R tokens come back (and the logits only when asked for).
  // sampleHost_ / sampleDev_: [R] RowSampling | [R] tokens | [M] mask rows | [M, words] masks (16-byte aligned parts);
  // one upload of the parameters and masks (only the masked rows' masks: unconstrained rows pay nothing).
  const size_t paramBytes = ((size_t)R * sizeof(RowSampling) + 15) / 16 * 16;
  const int M = b.sampling ? b.numMaskedRows : 0;
  const size_t words = (size_t)(spec_.vocabSize + 31) / 32;
  const size_t tokenBytes = ((size_t)R * sizeof(int32_t) + 15) / 16 * 16;
  const size_t maskRowsOff = paramBytes + tokenBytes, masksOff = maskRowsOff + ((size_t)M * sizeof(int32_t) + 15) / 16 * 16;
  const size_t sampleBytes = M ? masksOff + (size_t)M * words * sizeof(int32_t) : paramBytes + tokenBytes;
  if (b.sampling && R) {
    sampleHost_.ensure(sampleBytes, "sampling parameters");
    sampleDev_.ensure(sampleBytes, "sampling parameters");
    std::memcpy(sampleHost_.get(), b.sampling, (size_t)R * sizeof(RowSampling));
    if (M) {
      std::memcpy(sampleHost_.as<char>() + maskRowsOff, b.maskRows, (size_t)M * sizeof(int32_t));
      std::memcpy(sampleHost_.as<char>() + masksOff, b.tokenMasks, (size_t)M * words * sizeof(int32_t));
      check(cudaMemcpyAsync(sampleDev_.get(), sampleHost_.get(), sampleBytes, cudaMemcpyHostToDevice, stream_),
            "upload sampling parameters and token masks");
      launchTokenMask(logits_.as<float>(), spec_.vocabSize, (const int32_t*)(sampleDev_.as<char>() + maskRowsOff), M,
                      (const int32_t*)(sampleDev_.as<char>() + masksOff), stream_);
    } else {
      check(cudaMemcpyAsync(sampleDev_.get(), sampleHost_.get(), (size_t)R * sizeof(RowSampling), cudaMemcpyHostToDevice, stream_),
            "upload sampling parameters");
    }
    int32_t* tokens = (int32_t*)(sampleDev_.as<char>() + paramBytes);
    launchSample(logits_.as<float>(), R, spec_.vocabSize, sampleDev_.as<RowSampling>(), tokens, stream_);
    check(cudaMemcpyAsync(sampleHost_.as<char>() + paramBytes, tokens, (size_t)R * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
          "download sampled tokens");
  }
  // The caller's buffer is pageable (often freshly allocated): rather than a D2H staged through the driver's
  // bounce buffers, one DMA into our pinned buffer, then one host memcpy.
  const size_t logitBytes = logitsOut ? (size_t)R * spec_.vocabSize * sizeof(float) : 0;
  if (logitBytes) {
    hostLogits_.ensure(logitBytes, "logits download buffer");
    check(cudaMemcpyAsync(hostLogits_.get(), logits_.get(), logitBytes, cudaMemcpyDeviceToHost, stream_), "download logits");
  }
  check(cudaMemcpyAsync(h + flagOff, errFlag_.get(), sizeof(int), cudaMemcpyDeviceToHost, stream_), "download flag");
  check(cudaEventRecord(doneEvent_, stream_), "record forward event");
  Pending pd;
  pd.active = true; pd.T = T; pd.R = R; pd.graph = ran;
  pd.logitsOut = logitsOut; pd.logitBytes = logitBytes;
  pd.sampled = b.sampling && R ? b.sampledTokens : nullptr; pd.paramBytes = paramBytes;
  pd.flagOff = flagOff;
  if (trace) { pd.tEntry = tEntry; pd.tPrepared = tPrepared; pd.tEnqueued = Clock::now(); }
  pending_ = pd;
}

cudaGraphExec_t CudaBackend::capture(const Plan& p) {
  cudaGraph_t graph = nullptr;
  check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "begin graph capture");
  try {
    runModel(p);
  } catch (...) {
    cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  check(cudaStreamEndCapture(stream_, &graph), "end graph capture");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(e, "graph instantiate");
  return exec;
}

}  // namespace pds::cuda
