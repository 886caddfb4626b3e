// CudaBackend: construction, weights (fused QKV and gate/up matrices), KV cache allocation, the factory.
#include "cuda-backend.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "common.cuh"
#include "kernels.h"
#include "pds/weight-layout.h"

namespace pds::cuda {
namespace {

void validateSpec(const ModelSpec& s) {
  auto bad = [](const std::string& m) { throw std::runtime_error("CUDA backend: invalid model spec: " + m); };
  if (s.numLayers <= 0 || s.hiddenSize <= 0 || s.intermediateSize <= 0 || s.numHeads <= 0 || s.numKvHeads <= 0 ||
      s.headDim <= 0 || s.vocabSize <= 0)
    bad("all sizes must be positive");
  if (s.numHeads % s.numKvHeads) bad("numHeads must be a multiple of numKvHeads");
  if (s.headDim % 8 || s.headDim > 256 || ((s.headDim / 8) & (s.headDim / 8 - 1)))
    bad("headDim must be 8 times a power of two, at most 256 (got " + std::to_string(s.headDim) + ")");
  const int vec = 16 / (int)dtypeSize(s.weightDtype);
  if (s.hiddenSize % vec) bad("hiddenSize must be a multiple of " + std::to_string(vec));
  if ((int)s.weightDtype < 0 || (int)s.weightDtype > 2) bad("unsupported weight dtype");
}

// RoPE inverse frequencies [D/2], with llama3 scaling when asked (as transformers computes them).
std::vector<float> ropeInvFreq(const ModelSpec& s) {
  const int half = s.headDim / 2;
  std::vector<float> f(half);
  for (int i = 0; i < half; ++i) {
    const float exponent = (float)(2 * i) / (float)s.headDim;
    double inv = 1.0 / std::pow((double)s.ropeTheta, (double)exponent);
    if (s.ropeType == RopeType::Llama3) {
      const double oldLen = s.ropeOriginalMaxPos, lowW = oldLen / s.ropeLowFreqFactor,
                   highW = oldLen / s.ropeHighFreqFactor, wl = 2 * M_PI / inv;
      if (wl > lowW) inv = inv / s.ropeFactor;
      else if (!(wl < highW)) {
        const double smooth = (oldLen / wl - s.ropeLowFreqFactor) / (s.ropeHighFreqFactor - s.ropeLowFreqFactor);
        inv = (1 - smooth) * inv / s.ropeFactor + smooth * inv;
      }
    }
    f[i] = (float)inv;
    // transformers keeps inv_freq in the checkpoint dtype: round through it (see ModelSpec::ropeFreqDtype)
    if (s.ropeFreqDtype == DType::BF16) f[i] = __bfloat162float(__float2bfloat16_rn(f[i]));
    else if (s.ropeFreqDtype == DType::F16) f[i] = __half2float(__float2half_rn(f[i]));
  }
  return f;
}

int envInt(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

}  // namespace

bool pdlEnabled() {
  static const bool on = envInt("PDSERVE_CUDA_PDL", 1) != 0;
  return on;
}

CudaBackend::CudaBackend(const ModelSpec& spec, const BackendOptions& opts) : spec_(spec) {
  validateSpec(spec_);
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("CUDA backend: no usable CUDA device (driver missing or too old?): ") +
                             cudaGetErrorString(e));
  }
  if (count == 0) throw std::runtime_error("CUDA backend: no CUDA device found");
  device_ = opts.deviceIndex;
  if (device_ == 0 && opts.device.rfind("cuda:", 0) == 0) device_ = std::atoi(opts.device.c_str() + 5);
  if (device_ < 0 || device_ >= count)
    throw std::runtime_error("CUDA backend: device index " + std::to_string(device_) + " out of range (" +
                             std::to_string(count) + " device(s))");
  check(cudaSetDevice(device_), "cudaSetDevice");
  try {
    init();
  } catch (...) {
    releaseHandles();  // members own their memory; streams, events and cuBLAS are released here
    throw;
  }
}

void CudaBackend::init() {
  name_ = "cuda:" + std::to_string(device_);
  check(cudaDeviceGetAttribute(&numSms_, cudaDevAttrMultiProcessorCount, device_), "device attributes");
  elem_ = dtypeSize(spec_.weightDtype);
  actDt_ = kvDtype_ = spec_.weightDtype;
  aElem_ = elem_;
  useGraphs_ = envInt("PDSERVE_CUDA_GRAPHS", 1) != 0;
  gemvMaxRows_ = std::min(envInt("PDSERVE_CUDA_GEMV_ROWS", 4), kGemvMaxRows);
  fusedDecode_ = std::max(0, std::min(envInt("PDSERVE_CUDA_FUSED_DECODE", 0), 2));
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "create stream");
  check(cudaStreamCreateWithFlags(&xferStream_, cudaStreamNonBlocking), "create stream");
  for (auto& ev : bounceDone_) check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "create event");
  check(cudaEventCreateWithFlags(&doneEvent_, cudaEventDisableTiming), "create event");
  blasWs_.alloc(32u << 20, "cuBLAS workspace");
  blas_ = std::make_unique<Cublas>(stream_, blasWs_.get(), blasWs_.bytes());

  qkvRows_ = (spec_.numHeads + 2 * spec_.numKvHeads) * spec_.headDim;
  // Every buffer and tensor in the weight dtype (pds/weight-layout.h); absent buffers stay null.
  layers_.assign(spec_.numLayers, Layer{});
  const WeightLayout layout = weightLayout(spec_);
  for (const WeightBufferSpec& w : layout.buffers) *weightPtr(w.buffer, w.layer) = allocWeight(w.numel, w.what);
  for (const WeightSlotSpec& w : layout.slots)
    addSlot(w.name, (char*)*weightPtr(w.buffer, w.layer) + w.elemOffset * elem_, w.shape, (int)w.role);
  const std::vector<float> inv = ropeInvFreq(spec_);
  invFreq_.alloc(inv.size() * sizeof(float), "rope frequencies");
  check(cudaMemcpyAsync(invFreq_.get(), inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice, stream_),
        "upload rope table");
  check(cudaStreamSynchronize(stream_), "upload rope table");
  errFlag_.alloc(sizeof(int), "error flag");
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_);
  if (xferStream_) cudaStreamSynchronize(xferStream_);
  for (auto& [p, n] : registered_) cudaHostUnregister(p);
  registered_.clear();
  closePeers();
  releaseHandles();
}

void CudaBackend::releaseHandles() {
  clearGraphs();
  blas_.reset();
  for (auto& ev : bounceDone_) { if (ev) cudaEventDestroy(ev); ev = nullptr; }
  if (doneEvent_) cudaEventDestroy(doneEvent_);
  doneEvent_ = nullptr;
  pending_ = Pending{};
  if (stream_) cudaStreamDestroy(stream_);
  if (xferStream_) cudaStreamDestroy(xferStream_);
  stream_ = xferStream_ = nullptr;
}

void* CudaBackend::allocWeight(size_t numel, const char* what) {
  weightMem_.emplace_back();
  weightMem_.back().alloc(numel * elem_, what);
  weightBytes_ += numel * elem_;
  return weightMem_.back().get();
}

void CudaBackend::addSlot(const std::string& name, void* dst, std::vector<int64_t> shape, int role) {
  Slot s;
  s.dst = dst;
  s.numel = 1;
  for (int64_t d : shape) s.numel *= (size_t)d;
  s.shape = std::move(shape);
  s.role = role;
  slots_[name] = std::move(s);
}

void** CudaBackend::weightPtr(WeightBuffer b, int layer) {
  const WeightFields<void*, Layer> f{&embed_, &finalNorm_, &lmHead_, &Layer::inNorm, &Layer::postNorm, &Layer::qkv,
                                     &Layer::qkvBias, &Layer::qNorm, &Layer::kNorm, &Layer::o, &Layer::gateUp, &Layer::down};
  return weightField(f, layers_, b, layer);
}

void CudaBackend::setWeight(const std::string& name, const void* host, DType srcDtype,
                            const std::vector<int64_t>& shape) {
  std::lock_guard<std::mutex> lk(computeMu_);
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (isIgnoredWeight(spec_, name)) return;  // tied lm_head: the embedding serves (weight-layout.h)
  auto it = slots_.find(name);
  if (it == slots_.end()) throw std::runtime_error("CUDA backend: unknown weight " + name);
  Slot& s = it->second;
  if (shape != s.shape)
    throw std::runtime_error("CUDA backend: weight " + name + " has shape " + shapeString(shape) + ", expected " +
                             shapeString(s.shape));
  if ((int)srcDtype < 0 || (int)srcDtype > 2) throw std::runtime_error("CUDA backend: weight " + name + ": unsupported dtype");
  if (!host) throw std::runtime_error("CUDA backend: weight " + name + ": null data");
  const size_t srcElem = dtypeSize(srcDtype);
  // Every copy is ordered on stream_ (a plain cudaMemcpy from pageable memory may return before its DMA
  // lands, and stream_ does not wait for the legacy stream).
  if (srcDtype == spec_.weightDtype) {
    check(cudaMemcpyAsync(s.dst, host, s.numel * elem_, cudaMemcpyHostToDevice, stream_), ("upload weight " + name).c_str());
    check(cudaStreamSynchronize(stream_), ("upload weight " + name).c_str());
  } else {
    const size_t chunk = (size_t)16 << 20;  // elements per staged conversion
    DeviceBuffer stage;
    stage.alloc(std::min(chunk, s.numel) * srcElem, "weight conversion staging");
    for (size_t off = 0; off < s.numel; off += chunk) {
      const size_t n = std::min(chunk, s.numel - off);
      check(cudaMemcpyAsync(stage.get(), (const char*)host + off * srcElem, n * srcElem, cudaMemcpyHostToDevice, stream_),
            ("upload weight " + name).c_str());
      launchConvert(spec_.weightDtype, (char*)s.dst + off * elem_, srcDtype, stage.get(), n, stream_);
      check(cudaStreamSynchronize(stream_), ("convert weight " + name).c_str());
    }
  }
  s.set = true;
  finalized_ = false;
}

void CudaBackend::initDummyWeights(uint64_t seed) {
  std::lock_guard<std::mutex> lk(computeMu_);
  check(cudaSetDevice(device_), "cudaSetDevice");
  uint64_t i = 0;
  for (auto& [name, s] : slots_) {
    float scale = 0.02f, offset = 0.f;
    if (s.role == 0) scale = 1.f / std::sqrt((float)s.shape[1]);
    else if (s.role == 1) { scale = 0.05f; offset = 1.f; }
    else if (s.role == 3) scale = 1.f;
    launchFillRandom(spec_.weightDtype, s.dst, s.numel, seed * 0x100000001b3ull + (++i), scale, offset, stream_);
    s.set = true;
  }
  check(cudaStreamSynchronize(stream_), "dummy weights");
  finalized_ = false;
}

void CudaBackend::finalizeWeights() {
  std::lock_guard<std::mutex> lk(computeMu_);
  for (auto& [name, s] : slots_)
    if (!s.set) throw std::runtime_error("CUDA backend: missing weight " + name);
  if (spec_.tieWordEmbeddings) lmHead_ = embed_;
  if (kv_.get()) prepareCompute();
  finalized_ = true;
}

// run_ = layers_ when activations are in the weight dtype; with f32 compute over bf16/f16 weights, the
// small vectors the element-wise kernels read in the activation type (norm weights, biases) are converted
// into one f32 buffer and run_ points there. Matrices and the embedding table are never copied.
void CudaBackend::prepareCompute() {
  clearGraphs();
  run_ = layers_;
  runFinalNorm_ = finalNorm_;
  computeCopies_.reset();
  if (!mixed()) return;
  const int H = spec_.hiddenSize, D = spec_.headDim;
  size_t total = H;
  for (const Layer& L : layers_) total += 2 * (size_t)H + (L.qkvBias ? qkvRows_ : 0) + (L.qNorm ? 2 * (size_t)D : 0);
  computeCopies_.alloc(total * aElem_, "f32 copies of norm weights and biases");
  char* next = computeCopies_.as<char>();
  auto copy = [&](void*& ptr, size_t n) {
    if (!ptr) return;
    launchConvert(actDt_, next, spec_.weightDtype, ptr, n, stream_);
    ptr = next;
    next += n * aElem_;
  };
  copy(runFinalNorm_, H);
  for (Layer& L : run_) {
    copy(L.inNorm, H); copy(L.postNorm, H);
    copy(L.qkvBias, qkvRows_);
    copy(L.qNorm, D); copy(L.kNorm, D);
  }
  check(cudaStreamSynchronize(stream_), "f32 copies of norm weights");
}

size_t CudaBackend::kvBytesPerToken() const {
  return (size_t)spec_.numLayers * 2 * spec_.numKvHeads * spec_.headDim * dtypeSize(kvDtype_);
}

size_t CudaBackend::freeMemoryBytes() const {
  cudaSetDevice(device_);
  size_t freeB = 0, total = 0;
  check(cudaMemGetInfo(&freeB, &total), "cudaMemGetInfo");
  return freeB;
}

void CudaBackend::allocKvCache(int numBlocks, int blockSize, DType kvDtype) {
  std::lock_guard<std::mutex> lk(computeMu_);
  std::lock_guard<std::mutex> lk2(xferMu_);
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (numBlocks <= 0 || blockSize <= 0) throw std::runtime_error("CUDA backend: KV cache needs numBlocks > 0 and blockSize > 0");
  if (kvDtype != spec_.weightDtype && kvDtype != DType::F32)
    throw std::runtime_error(std::string("CUDA backend: KV cache dtype ") + dtypeStr(kvDtype) +
                             " unsupported: it must be the weight dtype (" + dtypeStr(spec_.weightDtype) + ") or f32");
  const size_t bytes =
      (size_t)numBlocks * blockSize * spec_.numLayers * 2 * spec_.numKvHeads * spec_.headDim * dtypeSize(kvDtype);
  size_t freeB = 0, total = 0;
  check(cudaMemGetInfo(&freeB, &total), "cudaMemGetInfo");
  freeB += kv_.bytes();  // the current cache is replaced, and kept if the new one cannot fit
  const size_t reserve = (size_t)256 << 20;  // activations, workspaces
  if (bytes + reserve > freeB)
    throw std::runtime_error("CUDA backend: KV cache of " + gib(bytes) + " (" + std::to_string(numBlocks) + " blocks of " +
                             std::to_string(blockSize) + ") does not fit: " + gib(freeB) + " free, " + gib(reserve) +
                             " kept for activations");
  clearGraphs();
  kv_.reset();
  numBlocks_ = 0;
  kv_.alloc(bytes, "KV cache");
  check(cudaMemsetAsync(kv_.get(), 0, bytes, stream_), "clear KV cache");
  check(cudaStreamSynchronize(stream_), "clear KV cache");
  numBlocks_ = numBlocks;
  blockSize_ = blockSize;
  kvDtype_ = kvDtype;
  if (kvDtype != actDt_) {  // activation buffers are re-sized for the new element size on the next forward
    actDt_ = kvDtype;
    aElem_ = dtypeSize(kvDtype);
    capTokens_ = capLogits_ = 0;
  }
  if (finalized_) prepareCompute();
}

void CudaBackend::requireReady(const char* what) const {
  if (!finalized_) throw std::runtime_error(std::string("CUDA backend: ") + what + " before finalizeWeights()");
  if (!kv_.get()) throw std::runtime_error(std::string("CUDA backend: ") + what + " before allocKvCache()");
}

}  // namespace pds::cuda

extern "C" __attribute__((visibility("default"))) pds::Backend* pds_create_cuda_backend(
    const pds::ModelSpec* spec, const pds::BackendOptions* opts, char* err, size_t errLen) {
  try {
    if (!spec || !opts) throw std::runtime_error("CUDA backend: null spec or options");
    return new pds::cuda::CudaBackend(*spec, *opts);
  } catch (const std::exception& e) {
    if (err && errLen) {
      std::strncpy(err, e.what(), errLen - 1);
      err[errLen - 1] = 0;
    }
    return nullptr;
  }
}
