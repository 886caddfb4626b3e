// CudaBackend KV peer transfer: GPU -> GPU between two processes of one host over CUDA IPC (NIXL style:
// the decoder pulls the prefiller's blocks straight out of its KV allocation).
//
// Handle (opaque bytes, kvExportIpc): PeerHandle below -- magic, the cudaIpcMemHandle of the whole KV
// allocation, the exporting GPU's PCI bus id (device ordinals differ between processes with different
// CUDA_VISIBLE_DEVICES), the pid (a process cannot open its own handle) and the layout numbers checked
// at import. kvCopyFromPeer: ONE kernel over (layer, K|V, block pair) reading peer memory with 16-byte
// loads (peer access over NVLink/PCIe), on the transfer stream, synchronized before return.
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "common.cuh"
#include "cuda-backend.h"

namespace pds::cuda {
namespace {

constexpr char kMagic[8] = {'P', 'D', 'S', 'I', 'P', 'C', '1', 0};

struct PeerHandle {
  char magic[8];
  cudaIpcMemHandle_t mem;
  char pciBusId[32];
  int32_t pid;
  int32_t numLayers, numKvHeads, headDim, blockSize, numBlocks, dtype;
  uint64_t kvBytes;
};

// grid.x = block pairs, grid.y = layers * 2 planes; each CTA copies one block (blockBytes, a multiple of
// 16) with 4 independent 16-byte loads in flight per thread.
__global__ void peerCopyKernel(const uint4* __restrict__ src, uint4* __restrict__ dst, const int32_t* __restrict__ ids,
                               int nPairs, size_t srcPlane, size_t dstPlane, int blockVecs) {
  const int pair = blockIdx.x;
  const size_t plane = blockIdx.y;
  const uint4* s = src + plane * srcPlane + (size_t)ids[pair] * blockVecs;
  uint4* d = dst + plane * dstPlane + (size_t)ids[nPairs + pair] * blockVecs;
  constexpr int U = 4;
  for (int base = threadIdx.x; base < blockVecs; base += blockDim.x * U) {
    uint4 r[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int i = base + u * blockDim.x;
      if (i < blockVecs) r[u] = s[i];
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int i = base + u * blockDim.x;
      if (i < blockVecs) d[i] = r[u];
    }
  }
}

[[noreturn]] void fail(const char* fn, const std::string& m) {
  throw std::runtime_error(std::string("CUDA backend: ") + fn + ": " + m);
}

}  // namespace

std::string CudaBackend::kvExportIpc() {
  std::lock_guard<std::mutex> lk(xferMu_);
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (!kv_.get()) fail("kvExportIpc", "called before allocKvCache()");
  PeerHandle h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  check(cudaIpcGetMemHandle(&h.mem, kv_.get()), "kvExportIpc: cudaIpcGetMemHandle");
  check(cudaDeviceGetPCIBusId(h.pciBusId, sizeof h.pciBusId, device_), "kvExportIpc: cudaDeviceGetPCIBusId");
  h.pid = (int32_t)getpid();
  h.numLayers = spec_.numLayers;
  h.numKvHeads = spec_.numKvHeads;
  h.headDim = spec_.headDim;
  h.blockSize = blockSize_;
  h.numBlocks = numBlocks_;
  h.dtype = (int32_t)kvDtype_;
  h.kvBytes = kv_.bytes();
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

int CudaBackend::kvImportPeer(const std::string& handle) {
  std::lock_guard<std::mutex> lk(xferMu_);
  const char* fn = "kvImportPeer";
  auto it = peerByHandle_.find(handle);
  if (it != peerByHandle_.end()) return it->second;
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (!kv_.get()) fail(fn, "called before allocKvCache()");
  PeerHandle h{};
  if (handle.size() != sizeof h) fail(fn, "handle has " + std::to_string(handle.size()) + " bytes, expected " + std::to_string(sizeof h));
  std::memcpy(&h, handle.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) fail(fn, "not a pdserve KV IPC handle (bad magic)");
  h.pciBusId[sizeof h.pciBusId - 1] = 0;
  auto mismatch = [&](const char* what, long a, long b) {
    fail(fn, std::string("peer KV layout differs: ") + what + " " + std::to_string(a) + " (peer) vs " + std::to_string(b) + " (here)");
  };
  if (h.numLayers != spec_.numLayers) mismatch("layers", h.numLayers, spec_.numLayers);
  if (h.numKvHeads != spec_.numKvHeads) mismatch("kv heads", h.numKvHeads, spec_.numKvHeads);
  if (h.headDim != spec_.headDim) mismatch("head dim", h.headDim, spec_.headDim);
  if (h.blockSize != blockSize_) mismatch("block size", h.blockSize, blockSize_);
  if (h.dtype != (int32_t)kvDtype_) mismatch("dtype", h.dtype, (int)kvDtype_);
  const size_t expect = (size_t)h.numBlocks * h.blockSize * kvBytesPerToken();  // all layers, K and V
  if (h.numBlocks <= 0 || h.kvBytes < expect) fail(fn, "peer KV allocation is smaller than its layout implies");
  if (h.pid == (int32_t)getpid()) fail(fn, "the handle comes from this process (CUDA IPC maps only other processes' memory)");

  int remote = -1;
  if (cudaDeviceGetByPCIBusId(&remote, h.pciBusId) != cudaSuccess) {
    cudaGetLastError();
    fail(fn, std::string("the peer's GPU (PCI ") + h.pciBusId + ") is not visible to this process (CUDA_VISIBLE_DEVICES?)");
  }
  if (remote != device_) {
    int can = 0;
    check(cudaDeviceCanAccessPeer(&can, device_, remote), "cudaDeviceCanAccessPeer");
    if (!can)
      fail(fn, "GPU " + std::to_string(device_) + " cannot access peer GPU " + std::to_string(remote) + " (PCI " + h.pciBusId +
                   "): no peer-to-peer path; use the pool transfer channel");
  }
  void* base = nullptr;
  const cudaError_t e = cudaIpcOpenMemHandle(&base, h.mem, cudaIpcMemLazyEnablePeerAccess);
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail(fn, std::string("cudaIpcOpenMemHandle: ") + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + "; is the prefiller (pid " +
                 std::to_string(h.pid) + ") still running?)");
  }
  const int idx = (int)peers_.size();
  peers_.push_back(Peer{base, remote, h.numBlocks});
  peerByHandle_.emplace(handle, idx);
  return idx;
}

void CudaBackend::kvCopyFromPeer(int peer, const int32_t* srcBlocks, const int32_t* dstBlocks, int nBlocks) {
  std::lock_guard<std::mutex> lk(xferMu_);
  const char* fn = "kvCopyFromPeer";
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (!kv_.get()) fail(fn, "called before allocKvCache()");
  if (peer < 0 || peer >= (int)peers_.size() || !peers_[peer].base) fail(fn, "unknown peer " + std::to_string(peer));
  if (nBlocks == 0) return;
  if (nBlocks < 0 || !srcBlocks || !dstBlocks) fail(fn, "bad arguments");
  const Peer& p = peers_[peer];
  for (int i = 0; i < nBlocks; ++i) {
    if (srcBlocks[i] < 0 || srcBlocks[i] >= p.numBlocks) fail(fn, "peer block id " + std::to_string(srcBlocks[i]) + " out of range");
    if (dstBlocks[i] < 0 || dstBlocks[i] >= numBlocks_) fail(fn, "block id " + std::to_string(dstBlocks[i]) + " out of range");
  }
  const size_t blockBytes = (size_t)blockSize_ * spec_.numKvHeads * spec_.headDim * dtypeSize(kvDtype_);
  if (blockBytes % 16) fail(fn, "block of " + std::to_string(blockBytes) + " bytes is not a multiple of 16");
  const size_t idBytes = (size_t)2 * nBlocks * sizeof(int32_t);
  peerIds_.ensure(idBytes, "KV peer block ids");
  std::memcpy(peerIds_.get(), srcBlocks, nBlocks * sizeof(int32_t));
  std::memcpy(peerIds_.as<int32_t>() + nBlocks, dstBlocks, nBlocks * sizeof(int32_t));
  peerDevIds_.ensure(idBytes, "KV peer block ids");
  check(cudaMemcpyAsync(peerDevIds_.get(), peerIds_.get(), idBytes, cudaMemcpyHostToDevice, xferStream_), "upload peer block ids");
  const int blockVecs = (int)(blockBytes / 16);
  const dim3 grid((unsigned)nBlocks, (unsigned)(spec_.numLayers * 2));
  peerCopyKernel<<<grid, 256, 0, xferStream_>>>(static_cast<const uint4*>(p.base), kv_.as<uint4>(), peerDevIds_.as<int32_t>(), nBlocks,
                                                (size_t)p.numBlocks * blockVecs, (size_t)numBlocks_ * blockVecs, blockVecs);
  checkLaunch("peerCopyKernel");
  check(cudaStreamSynchronize(xferStream_), "kvCopyFromPeer");
}

void CudaBackend::closePeers() {
  for (auto& p : peers_)
    if (p.base) cudaIpcCloseMemHandle(p.base);
  peers_.clear();
  peerByHandle_.clear();
}

}  // namespace pds::cuda
