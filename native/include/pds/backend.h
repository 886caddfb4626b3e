// The device seam: everything above this interface (binding, JS engine, KV layer) is device-agnostic.
// One implementation per device: cpu/cpu-backend.cc, cuda/cuda-backend.cu (loaded with dlopen from
// build/pdserve_cuda.so through the C factory `pds_create_cuda_backend`).
//
// KV cache layout (one allocation, owned by the backend):
//   [layers, 2 (K,V), num_blocks, block_size, kv_heads, head_dim]   in kvDtype
// KV transfer buffer layout (host memory; what the KV layer stores as a chunk):
//   [layers, 2 (K,V), num_tokens, kv_heads, head_dim]               in kvDtype
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pds/types.h"

namespace pds {

struct BackendOptions {
  std::string device = "cpu";  // "cpu" | "cuda" | "cuda:N"
  int deviceIndex = 0;
  int threads = 0;             // CPU worker threads; 0 = all available cores
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;            // "cpu" | "cuda:0" ...
  virtual const ModelSpec& spec() const = 0;

  // --- weights (Hugging Face names, e.g. "model.layers.3.self_attn.q_proj.weight") ---
  // Copies host data of srcDtype into device memory, converting to spec().weightDtype.
  // Throws std::runtime_error naming the tensor on an unknown name or a shape mismatch.
  virtual void setWeight(const std::string& name, const void* host, DType srcDtype,
                         const std::vector<int64_t>& shape) = 0;
  // Fills every weight with seeded random values (norm weights near 1), deterministic per seed.
  virtual void initDummyWeights(uint64_t seed) = 0;
  // Throws naming the first missing weight; ties lm_head to embed_tokens when spec says so.
  virtual void finalizeWeights() = 0;
  virtual size_t weightBytes() const = 0;

  // --- paged KV cache ---
  virtual void allocKvCache(int numBlocks, int blockSize, DType kvDtype) = 0;
  virtual size_t kvBytesPerToken() const = 0;       // all layers, K and V
  virtual size_t freeMemoryBytes() const = 0;       // device memory free now (host RAM on CPU)

  // --- compute ---
  // Runs the model on the batch; writes float32 logits [numLogits, vocab] to host memory `logitsOut`.
  virtual void forward(const BatchDesc& batch, float* logitsOut) = 0;

  // --- asynchronous forward (devices with their own queue: cuda) ---
  // forwardBegin validates and enqueues the forward, then returns; the batch's input arrays may be reused at
  // once, but logitsOut and batch.sampledTokens must stay valid until forwardEnd. forwardReady() polls;
  // forwardEnd() waits if needed, writes the outputs and throws what forward would have thrown. One forward
  // in flight at a time (forwardBegin throws otherwise). The defaults run the whole forward in forwardBegin.
  virtual bool asyncForward() const { return false; }
  virtual void forwardBegin(const BatchDesc& batch, float* logitsOut) { forward(batch, logitsOut); }
  virtual bool forwardReady() { return true; }
  virtual void forwardEnd() {}

  // --- KV transfer (host buffer layout above; tokens are the first numTokens slots of blockIds) ---
  virtual void kvGather(const int32_t* blockIds, int numBlocks, int numTokens, void* hostDst) = 0;
  virtual void kvScatter(const int32_t* blockIds, int numBlocks, int numTokens, const void* hostSrc) = 0;

  // --- host memory the KV transfers copy to and from (kv-server pool pages, chunk buffers) ---
  // Page-locks [p, p + bytes) for direct DMA (cudaHostRegister on cuda); false where the device has no use for
  // it (cpu) or the registration failed (the memory then stays pageable and transfers stage through pinned
  // buffers). Unregister before the memory is unmapped or freed.
  virtual bool registerHostMemory(void* p, size_t bytes) { (void)p; (void)bytes; return false; }
  virtual void unregisterHostMemory(void* p) { (void)p; }
  // The KV cache's own memory (layout above) where it lives in host memory (cpu), for transports that read
  // and write blocks in place (the tcp KV transport); {nullptr, 0} on a device. Valid until the backend is freed.
  virtual std::pair<void*, size_t> kvHostMemory() { return {nullptr, 0}; }

  // --- measured limits of the device (benchmark ratios) ---
  // readBandwidthGBs: a large device-to-device copy, (bytes read + bytes written) / second;
  // matmulPeakGflops: the best GEMM rate in the weight dtype (8192^3). Takes seconds and briefly allocates
  // ~2.5 GiB. Returns false where the host's own probes apply (cpu: the binding's measure* functions).
  struct DeviceLimits { double readBandwidthGBs = 0, matmulPeakGflops = 0; };
  virtual bool measureDeviceLimits(DeviceLimits* out) { (void)out; return false; }

  // --- KV peer transfer (device to device on one host, NIXL style; CUDA IPC on cuda) ---
  // The defaults throw: a device without peer transfer (cpu) keeps the host path.
  // Opaque handle of this backend's KV allocation (what a peer needs to map it and check the layout).
  virtual std::string kvExportIpc() { throw std::runtime_error(name() + ": KV peer transfer is not supported on this device"); }
  // Maps a peer's KV allocation (once per distinct handle; later calls return the cached index).
  // Throws when the layouts differ (layers, kv heads, head dim, block size, dtype) or the GPUs
  // cannot reach each other.
  virtual int kvImportPeer(const std::string& handle) {
    (void)handle;
    throw std::runtime_error(name() + ": KV peer transfer is not supported on this device");
  }
  // Copies all layers' K and V of peer blocks srcBlocks[i] into local blocks dstBlocks[i]; returns when done.
  virtual void kvCopyFromPeer(int peer, const int32_t* srcBlocks, const int32_t* dstBlocks, int nBlocks) {
    (void)peer; (void)srcBlocks; (void)dstBlocks; (void)nBlocks;
    throw std::runtime_error(name() + ": KV peer transfer is not supported on this device");
  }
};

std::unique_ptr<Backend> createCpuBackend(const ModelSpec& spec, const BackendOptions& opts);
// Loads build/pdserve_cuda.so (path given) and creates the CUDA backend; throws a clear error
// when the library, the driver or a GPU is missing.
std::unique_ptr<Backend> createCudaBackend(const std::string& libPath, const ModelSpec& spec,
                                           const BackendOptions& opts);

}  // namespace pds

// C factory exported by pdserve_cuda.so. Returns nullptr and fills err (NUL-terminated) on failure.
extern "C" pds::Backend* pds_create_cuda_backend(const pds::ModelSpec* spec, const pds::BackendOptions* opts,
                                                char* err, size_t errLen);
