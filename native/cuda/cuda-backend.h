// The CUDA implementation of pds::Backend (one model on one GPU). Split over files by concern:
//   cuda-backend.cu      construction, weights (pds/weight-layout.h), KV allocation, the C factory
//   cuda-forward.cu      forward(): batch check (pds/batch-check.h), input upload, the layer loop, decode
//                        CUDA graphs, logits download
//   kv-host-transfer.cu  kvGather / kvScatter between the paged cache and host memory (kernels in
//                        kv-pack-kernels.cu); registerHostMemory
//   kv-peer-ipc.cu       kvExportIpc / kvImportPeer / kvCopyFromPeer (GPU to GPU over CUDA IPC)
//   device-limits.cu     measureDeviceLimits (copy bandwidth, cuBLAS GEMM peak) for benchmark ratios
// Thread safety: forward and weight calls hold computeMu_; KV transfers hold xferMu_ and use their own
// stream, so a transfer can run while another thread runs forward (on disjoint blocks).
#pragma once
#include <cuda_runtime.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cublas-loader.h"
#include "device-buffer.h"
#include "pds/backend.h"
#include "pds/weight-layout.h"

namespace pds::cuda {

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelSpec& spec, const BackendOptions& opts);
  ~CudaBackend() override;

  std::string name() const override { return name_; }
  const ModelSpec& spec() const override { return spec_; }
  void setWeight(const std::string& name, const void* host, DType srcDtype, const std::vector<int64_t>& shape) override;
  void initDummyWeights(uint64_t seed) override;
  void finalizeWeights() override;
  size_t weightBytes() const override { return weightBytes_; }
  void allocKvCache(int numBlocks, int blockSize, DType kvDtype) override;
  size_t kvBytesPerToken() const override;
  size_t freeMemoryBytes() const override;
  void forward(const BatchDesc& batch, float* logitsOut) override;  // = forwardBegin + forwardEnd
  bool asyncForward() const override { return true; }
  void forwardBegin(const BatchDesc& batch, float* logitsOut) override;
  bool forwardReady() override;
  void forwardEnd() override;
  void kvGather(const int32_t* blockIds, int numBlocks, int numTokens, void* hostDst) override;
  void kvScatter(const int32_t* blockIds, int numBlocks, int numTokens, const void* hostSrc) override;
  std::string kvExportIpc() override;                       // kv-peer-ipc.cu
  int kvImportPeer(const std::string& handle) override;
  void kvCopyFromPeer(int peer, const int32_t* srcBlocks, const int32_t* dstBlocks, int nBlocks) override;
  bool measureDeviceLimits(DeviceLimits* out) override;  // device-limits.cu
  bool registerHostMemory(void* p, size_t bytes) override;  // kv-host-transfer.cu
  void unregisterHostMemory(void* p) override;

  // Tuning knobs (env at construction; tests may flip them): decode CUDA graphs, GEMV row limit.
  void setUseGraphs(bool on) { useGraphs_ = on; }
  void setGemvMaxRows(int rows) { gemvMaxRows_ = rows; }
  // Fused decode kernels for batches of <= gemvMaxRows_ tokens (PDSERVE_CUDA_FUSED_DECODE): 0 = off, 1 = the fused
  // GEMVs (gemv-fused.cu), 2 = also the qkv GEMV + RoPE + KV write (gemv-qkv-rope.cu). Off by default until a GPU
  // run has passed the kernel and fixture checks with it on (not yet: no device this session).
  void setFusedDecode(int level) { fusedDecode_ = level; clearGraphs(); }
  // Debugging aid: run only the first n layers (0 = all), then the final norm and lm_head.
  void setDebugLayers(int n) { debugLayers_ = n; clearGraphs(); }

 private:
  struct Slot {                    // one HF tensor's place in device memory
    void* dst = nullptr;
    std::vector<int64_t> shape;
    size_t numel = 0;
    int role = 0;                  // WeightRole: 0 matrix, 1 norm weight, 2 bias, 3 embedding
    bool set = false;
  };
  struct Layer {                   // null where the spec has no such buffer (qkvBias, qNorm, kNorm)
    void *inNorm = nullptr, *postNorm = nullptr, *qkv = nullptr, *qkvBias = nullptr, *o = nullptr, *qNorm = nullptr,
         *kNorm = nullptr, *gateUp = nullptr, *down = nullptr;
  };
  bool mixed() const { return actDt_ != spec_.weightDtype; }
  struct Graph { cudaGraphExec_t exec = nullptr; uint64_t lastUse = 0; int seen = 0; };
  struct Plan;                     // host-side layout of one forward's int inputs (cuda-forward.cu)

  void init();                     // constructor body after device selection
  void releaseHandles();           // graphs, cuBLAS, events, streams
  void* allocWeight(size_t numel, const char* what);
  void addSlot(const std::string& name, void* dst, std::vector<int64_t> shape, int role);
  void** weightPtr(WeightBuffer b, int layer);  // the member or layer field behind a weight-layout buffer
  void linear(const void* x, const void* w, void* y, int M, int N, int K, bool outF32);
  void prepareCompute();           // compute view of the weights for actDt_ (after finalize + KV alloc)
  void runModel(const Plan& p);    // everything between input upload and logits download
  void attention(const Plan& p, int layer, const void* kc, const void* vc);
  void clearGraphs();
  cudaGraphExec_t capture(const Plan& p);
  void copyKv(bool gather, const int32_t* blockIds, int numBlocks, int numTokens, void* host);
  void requireReady(const char* what) const;

  ModelSpec spec_;
  int device_ = 0;
  std::string name_;
  // Precision: weights in spec_.weightDtype (elem_ bytes). Activations and the KV cache in actDt_ (aElem_
  // bytes) = the KV cache dtype: the weight dtype, or f32 with bf16/f16 weights ("f32 compute": matrices
  // stay in their dtype, norm weights and biases get f32 copies, GEMM operands keep ~16 mantissa bits).
  size_t elem_ = 4;
  DType actDt_ = DType::F32;
  size_t aElem_ = 4;
  int qkvRows_ = 0;
  cudaStream_t stream_ = nullptr, xferStream_ = nullptr;
  DeviceBuffer blasWs_;
  std::unique_ptr<Cublas> blas_;

  std::vector<DeviceBuffer> weightMem_;
  std::map<std::string, Slot> slots_;
  std::vector<Layer> layers_;
  void *embed_ = nullptr, *finalNorm_ = nullptr, *lmHead_ = nullptr;
  // What runModel reads: layers_ itself, or (mixed()) the same with norm/bias pointers into computeCopies_.
  std::vector<Layer> run_;
  void* runFinalNorm_ = nullptr;
  DeviceBuffer computeCopies_;
  size_t weightBytes_ = 0;
  bool finalized_ = false;
  DeviceBuffer invFreq_;

  DeviceBuffer kv_;
  int numBlocks_ = 0, blockSize_ = 0;
  DType kvDtype_ = DType::F32;

  // forward state
  std::mutex computeMu_;
  PinnedBuffer hostInts_, hostLogits_, sampleHost_;  // sampleHost_/sampleDev_: RowSampling, tokens, token masks (forwardBegin)  // logits land in pinned memory (one DMA), then one memcpy to the caller
  DeviceBuffer devInts_, errFlag_, sampleDev_;
  DeviceBuffer x_, xn_, qkv_, attn_, ao_, gu_, act_, xnR_, logits_, hiLo_;
  DeviceBuffer wsO_, wsML_;
  size_t capTokens_ = 0, capLogits_ = 0;
  bool useGraphs_ = true;
  int gemvMaxRows_ = 4;
  int fusedDecode_ = 0;
  int splitSize_ = 256;
  int debugLayers_ = 0;
  int numSms_ = 132;
  std::map<std::vector<int64_t>, Graph> graphs_;
  // The forward in flight between forwardBegin and forwardEnd: where its outputs go once doneEvent_ fires.
  struct Pending {
    bool active = false, graph = false;
    int T = 0, R = 0;
    float* logitsOut = nullptr;
    size_t logitBytes = 0, paramBytes = 0, flagOff = 0;
    int32_t* sampled = nullptr;
    std::chrono::steady_clock::time_point tEntry, tPrepared, tEnqueued;
  };
  Pending pending_;
  cudaEvent_t doneEvent_ = nullptr;
  uint64_t graphClock_ = 0;

  // transfer state
  std::mutex xferMu_;
  PinnedBuffer xferIds_, bounce_[2];
  DeviceBuffer xferDevIds_, xferStage_;
  cudaEvent_t bounceDone_[2] = {nullptr, nullptr};
  std::map<void*, size_t> registered_;  // host ranges page-locked by registerHostMemory (released in the destructor)

  // peer KV allocations mapped with cudaIpcOpenMemHandle (kv-peer-ipc.cu); closed in the destructor
  struct Peer { void* base = nullptr; int device = -1; int numBlocks = 0; };
  std::vector<Peer> peers_;
  std::map<std::string, int> peerByHandle_;
  PinnedBuffer peerIds_;
  DeviceBuffer peerDevIds_;
  void closePeers();
};

}  // namespace pds::cuda
