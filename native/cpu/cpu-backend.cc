// pds::Backend on the host CPU: weights by Hugging Face name into fused buffers (q|k|v, gate|up),
// a paged KV cache, and the decoder forward pass over the kernels in kernels.h.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dtype.h"
#include "host-buffer.h"
#include "kernels.h"
#include "pds/backend.h"
#include "pds/batch-check.h"
#include "pds/sample-row.h"
#include "pds/token-mask.h"
#include "pds/weight-layout.h"

namespace pds {
namespace {

using cpu::HostBuffer;

// One weight tensor slot: where a named HF tensor lands (possibly inside a fused buffer; pds/weight-layout.h).
struct Slot {
  HostBuffer* buf;
  DType dtype;        // dtype kept in memory
  size_t elemOffset;  // inside buf
  std::vector<int64_t> shape;
  int kind;  // 0 = matrix, 1 = norm weight (init 1), 2 = bias
};

struct Layer {
  HostBuffer ln1, ln2, qNorm, kNorm, qkvBias;  // f32
  HostBuffer wqkv, wo, wgu, wd;                // weight dtype
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const ModelSpec& spec, const BackendOptions& opts) : spec_(spec), pool_(opts.threads) {
    validateSpec();
    const ModelSpec& s = spec_;
    const DType wd = s.weightDtype;
    qkvOut_ = (s.numHeads + 2 * s.numKvHeads) * s.headDim;
    layers_.resize(s.numLayers);
    // Norm weights and biases are kept in f32, matrices and the embedding in the weight dtype.
    const WeightLayout layout = weightLayout(s);
    auto f32Role = [](WeightRole r) { return r == WeightRole::Norm || r == WeightRole::Bias; };
    for (const WeightBufferSpec& w : layout.buffers)
      *buffer(w.buffer, w.layer) = HostBuffer(w.numel * (f32Role(w.role) ? 4 : dtypeSize(wd)));
    for (const WeightSlotSpec& w : layout.slots)
      slots_[w.name] = Slot{buffer(w.buffer, w.layer), f32Role(w.role) ? DType::F32 : wd, w.elemOffset, w.shape,
                            w.role == WeightRole::Norm ? 1 : w.role == WeightRole::Bias ? 2 : 0};
    invFreq_.resize(s.headDim / 2);
    cpu::ropeInvFreq(s, invFreq_.data());
  }

  std::string name() const override { return "cpu"; }
  const ModelSpec& spec() const override { return spec_; }

  void setWeight(const std::string& name, const void* host, DType srcDtype, const std::vector<int64_t>& shape) override {
    if (isIgnoredWeight(spec_, name)) return;  // tied lm_head: the embedding serves (weight-layout.h)
    auto it = slots_.find(name);
    if (it == slots_.end()) throw std::runtime_error("unknown weight '" + name + "' for this model spec");
    const Slot& sl = it->second;
    if (shape != sl.shape)
      throw std::runtime_error("weight '" + name + "' has shape " + shapeString(shape) + ", expected " + shapeString(sl.shape));
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    cpu::convert(host, srcDtype, static_cast<char*>(sl.buf->data()) + sl.elemOffset * dtypeSize(sl.dtype), sl.dtype, n);
    loaded_.insert(name);
  }

  void initDummyWeights(uint64_t seed) override {
    uint64_t stream = 0;
    for (auto& [name, sl] : slots_) {
      size_t n = 1;
      for (int64_t d : sl.shape) n *= static_cast<size_t>(d);
      char* dst = static_cast<char*>(sl.buf->data()) + sl.elemOffset * dtypeSize(sl.dtype);
      if (sl.kind == 1) {
        std::vector<float> ones(n, 1.0f);
        cpu::fromF32(ones.data(), sl.dtype, dst, n);
      } else {
        // uniform [-a, a] with a = 0.02 * sqrt(3): std 0.02, like HF initializer_range
        cpu::fillRandom(pool_, dst, sl.dtype, n, sl.kind == 2 ? 0.02f : 0.0346f, seed, stream);
      }
      stream++;
      loaded_.insert(name);
    }
  }

  void finalizeWeights() override {
    for (auto& [name, sl] : slots_)
      if (!loaded_.count(name)) throw std::runtime_error("missing weight '" + name + "'");
    finalized_ = true;
  }

  size_t weightBytes() const override {
    size_t b = embed_.size() + lmHead_.size() + normF_.size();
    for (const Layer& L : layers_)
      b += L.ln1.size() + L.ln2.size() + L.qNorm.size() + L.kNorm.size() + L.qkvBias.size() + L.wqkv.size() +
           L.wo.size() + L.wgu.size() + L.wd.size();
    return b;
  }

  std::pair<void*, size_t> kvHostMemory() override { return {kv_.data(), kv_.size()}; }

  void allocKvCache(int numBlocks, int blockSize, DType kvDtype) override {
    if (numBlocks <= 0 || blockSize <= 0) throw std::invalid_argument("allocKvCache: numBlocks and blockSize must be > 0");
    const size_t per = static_cast<size_t>(numBlocks) * blockSize * spec_.numKvHeads * spec_.headDim * dtypeSize(kvDtype);
    kv_ = HostBuffer(per * 2 * spec_.numLayers);
    kvLayers_.assign(spec_.numLayers, cpu::KvLayer{});
    for (int l = 0; l < spec_.numLayers; l++) {
      cpu::KvLayer& k = kvLayers_[l];
      k.k = kv_.as<char>() + (2 * l) * per;
      k.v = kv_.as<char>() + (2 * l + 1) * per;
      k.dtype = kvDtype;
      k.numBlocks = numBlocks;
      k.blockSize = blockSize;
      k.kvHeads = spec_.numKvHeads;
      k.headDim = spec_.headDim;
    }
    kvDtype_ = kvDtype;
  }

  size_t kvBytesPerToken() const override {
    return static_cast<size_t>(spec_.numLayers) * 2 * spec_.numKvHeads * spec_.headDim * dtypeSize(kvDtype_);
  }

  size_t freeMemoryBytes() const override {
    std::ifstream f("/proc/meminfo");
    std::string key;
    size_t kb;
    std::string unit;
    while (f >> key >> kb >> unit)
      if (key == "MemAvailable:") return kb * 1024;
    return 0;
  }

  void forward(const BatchDesc& b, float* logitsOut) override;
  // Test hook: PDSERVE_CPU_ASYNC_FORWARD=1 routes forwards through the binding's asynchronous path (the defaults:
  // the whole forward runs in forwardBegin, on the JS thread), so that path is tested without a GPU.
  bool asyncForward() const override {
    static const bool on = [] { const char* e = std::getenv("PDSERVE_CPU_ASYNC_FORWARD"); return e && *e == '1'; }();
    return on;
  }

  void kvGather(const int32_t* blockIds, int numBlocks, int numTokens, void* hostDst) override {
    requireKv();
    cpu::kvGatherAll(pool_, kvLayers_.data(), spec_.numLayers, blockIds, numBlocks, numTokens, hostDst);
  }
  void kvScatter(const int32_t* blockIds, int numBlocks, int numTokens, const void* hostSrc) override {
    requireKv();
    cpu::kvScatterAll(pool_, kvLayers_.data(), spec_.numLayers, blockIds, numBlocks, numTokens, hostSrc);
  }

 private:
  void validateSpec() const {
    const ModelSpec& s = spec_;
    if (s.numLayers <= 0 || s.hiddenSize <= 0 || s.intermediateSize <= 0 || s.numHeads <= 0 || s.numKvHeads <= 0 ||
        s.headDim <= 0 || s.vocabSize <= 0)
      throw std::invalid_argument("model spec: sizes must be > 0");
    if (s.numHeads % s.numKvHeads) throw std::invalid_argument("model spec: numHeads must be a multiple of numKvHeads");
    if (s.headDim % 2 || s.headDim > 256) throw std::invalid_argument("model spec: headDim must be even and <= 256");
  }
  // The HostBuffer behind a weight-layout buffer.
  HostBuffer* buffer(WeightBuffer b, int layer) {
    const WeightFields<HostBuffer, Layer> f{&embed_, &normF_, &lmHead_, &Layer::ln1, &Layer::ln2, &Layer::wqkv,
                                            &Layer::qkvBias, &Layer::qNorm, &Layer::kNorm, &Layer::wo, &Layer::wgu, &Layer::wd};
    return weightField(f, layers_, b, layer);
  }
  void requireKv() const {
    if (kvLayers_.empty()) throw std::runtime_error("KV cache not allocated (call allocKvCache first)");
  }
  void validateBatch(const BatchDesc& b, bool logitsOut) const;  // pds/batch-check.h + readiness

  ModelSpec spec_;
  cpu::ThreadPool pool_;
  int qkvOut_ = 0;
  HostBuffer embed_, lmHead_, normF_;
  std::vector<Layer> layers_;
  std::map<std::string, Slot> slots_;
  std::set<std::string> loaded_;
  bool finalized_ = false;
  std::vector<float> invFreq_;
  HostBuffer kv_;
  std::vector<cpu::KvLayer> kvLayers_;
  DType kvDtype_ = DType::F32;
  // forward scratch
  cpu::AlignedVec<float> x_, h_, qkv_, attn_, gu_, act_, cs_, fin_, logitsScratch_;
  std::vector<std::vector<float>> sampleScratch_;  // per logits row: sampleRow's sorted copies
};

void CpuBackend::validateBatch(const BatchDesc& b, bool logitsOut) const {
  if (!finalized_) throw std::runtime_error("forward before finalizeWeights");
  requireKv();
  checkBatch(b, spec_.vocabSize, KvGeometry{kvLayers_[0].numBlocks, kvLayers_[0].blockSize}, logitsOut);
}

void CpuBackend::forward(const BatchDesc& b, float* logitsOut) {
  validateBatch(b, logitsOut != nullptr);
  const ModelSpec& s = spec_;
  const int T = b.numTokens, H = s.hiddenSize, I = s.intermediateSize, hd = s.headDim, nH = s.numHeads,
            kvh = s.numKvHeads, Q = qkvOut_;
  const size_t t = T;
  x_.resize(t * H);
  h_.resize(t * H);
  qkv_.resize(t * Q);
  attn_.resize(t * nH * hd);
  gu_.resize(t * 2 * I);
  act_.resize(t * I);
  cs_.resize(t * hd);
  float *x = x_.data(), *h = h_.data(), *qkv = qkv_.data(), *attn = attn_.data(), *gu = gu_.data(), *act = act_.data();
  cpu::embedding(b.tokenIds, T, embed_.data(), s.weightDtype, s.vocabSize, H, x);
  cpu::ropeTable(b.positions, T, invFreq_.data(), hd / 2, cs_.data());
  const DType wd = s.weightDtype;
  cpu::AttnBatch ab{b.numSeqs, b.queryStartLoc, b.contextLens, b.blockTables, b.maxBlocksPerSeq};
  auto rows = [&](auto&& f) { pool_.parallelRange(T, 1, f); };

  for (int l = 0; l < s.numLayers; l++) {
    const Layer& L = layers_[l];
    rows([&](int64_t r0, int64_t r1) {
      cpu::rmsnorm(x + r0 * H, H, L.ln1.as<float>(), h + r0 * H, H, static_cast<int>(r1 - r0), H, s.rmsNormEps);
    });
    cpu::matmul(pool_, h, T, H, L.wqkv.data(), wd, Q, qkv, Q, false);
    rows([&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++) {
        float* row = qkv + r * Q;
        if (s.qkvBias)
          for (int i = 0; i < Q; i++) row[i] += L.qkvBias.as<float>()[i];
        if (s.qkNorm) {
          cpu::rmsnorm(row, hd, L.qNorm.as<float>(), row, hd, nH, hd, s.rmsNormEps);
          cpu::rmsnorm(row + nH * hd, hd, L.kNorm.as<float>(), row + nH * hd, hd, kvh, hd, s.rmsNormEps);
        }
        cpu::ropeApply(row, Q, 1, nH + kvh, hd, cs_.data() + r * hd);
      }
      cpu::kvWrite(kvLayers_[l], qkv + r0 * Q + nH * hd, Q, qkv + r0 * Q + (nH + kvh) * hd, Q, b.slotMapping + r0,
                   static_cast<int>(r1 - r0));
    });
    cpu::pagedAttention(pool_, qkv, Q, nH, kvLayers_[l], ab, attn, nH * hd);
    cpu::matmul(pool_, attn, T, nH * hd, L.wo.data(), wd, H, x, H, true);
    rows([&](int64_t r0, int64_t r1) {
      cpu::rmsnorm(x + r0 * H, H, L.ln2.as<float>(), h + r0 * H, H, static_cast<int>(r1 - r0), H, s.rmsNormEps);
    });
    cpu::matmul(pool_, h, T, H, L.wgu.data(), wd, 2 * I, gu, 2 * I, false);
    rows([&](int64_t r0, int64_t r1) {
      cpu::siluMul(gu + r0 * 2 * I, static_cast<int>(r1 - r0), I, act + r0 * I);
    });
    cpu::matmul(pool_, act, T, I, L.wd.data(), wd, H, x, H, true);
  }
  const int R = b.numLogits;
  if (R == 0) return;
  fin_.resize(static_cast<size_t>(R) * H);
  for (int r = 0; r < R; r++)
    cpu::rmsnorm(x + static_cast<size_t>(b.logitsIndices[r]) * H, H, normF_.as<float>(), fin_.data() + static_cast<size_t>(r) * H,
                 H, 1, H, s.rmsNormEps);
  const void* head = s.tieWordEmbeddings ? embed_.data() : lmHead_.data();
  float* logits = logitsOut;
  if (!logits) {
    logitsScratch_.resize(static_cast<size_t>(R) * s.vocabSize);
    logits = logitsScratch_.data();
  }
  cpu::matmul(pool_, fin_.data(), R, H, head, wd, s.vocabSize, logits, s.vocabSize, false);
  if (b.sampling) {
    const int words = tokenMaskWords(s.vocabSize);
    for (int m = 0; m < b.numMaskedRows; m++)
      applyTokenMask(logits + static_cast<size_t>(b.maskRows[m]) * s.vocabSize, s.vocabSize, b.tokenMasks + static_cast<size_t>(m) * words);
    sampleScratch_.resize(R);
    pool_.parallelRange(R, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++)
        b.sampledTokens[r] = sampleRow(logits + r * s.vocabSize, s.vocabSize, b.sampling[r], sampleScratch_[r]);
    });
  }
}

}  // namespace

std::unique_ptr<Backend> createCpuBackend(const ModelSpec& spec, const BackendOptions& opts) {
  return std::make_unique<CpuBackend>(spec, opts);
}

}  // namespace pds
