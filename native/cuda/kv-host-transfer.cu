// CudaBackend::kvGather / kvScatter. Host layout [layers, 2, numTokens, kv_heads, head_dim] is a run of
// (layer, K|V) planes; a kernel packs a chunk of planes from the paged cache into a device staging
// buffer, then one copy per chunk crosses PCIe. Host memory that is already pinned (cudaHostRegister'ed
// or cudaHostAlloc'ed by the caller) is copied to directly; pageable memory goes through two pinned
// bounce buffers, the CPU copy of one chunk overlapping the device copy of the next.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common.cuh"
#include "cuda-backend.h"
#include "kernels.h"

namespace pds::cuda {
namespace {

// memcpy on up to 4 threads for large copies (one core copies ~10 GB/s, less than PCIe).
void parallelMemcpy(void* dst, const void* src, size_t n) {
  const size_t minPer = (size_t)8 << 20;
  const int threads = (int)std::min<size_t>(4, std::max<size_t>(1, n / minPer));
  if (threads == 1) { std::memcpy(dst, src, n); return; }
  const size_t per = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) {
    const size_t o = i * per;
    if (o >= n) break;
    pool.emplace_back([=] { std::memcpy((char*)dst + o, (const char*)src + o, std::min(per, n - o)); });
  }
  std::memcpy(dst, src, std::min(per, n));
  for (auto& t : pool) t.join();
}

bool isPinned(const void* p) {
  cudaPointerAttributes a{};
  const cudaError_t e = cudaPointerGetAttributes(&a, p);
  if (e != cudaSuccess) { cudaGetLastError(); return false; }
  return a.type == cudaMemoryTypeHost;
}

}  // namespace

bool CudaBackend::registerHostMemory(void* p, size_t bytes) {
  std::lock_guard<std::mutex> lk(xferMu_);
  if (!p || !bytes) return false;
  if (registered_.count(p)) return true;
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (cudaHostRegister(p, bytes, cudaHostRegisterPortable) != cudaSuccess) {
    cudaGetLastError();  // not fatal: the range stays pageable
    return false;
  }
  registered_[p] = bytes;
  return true;
}

void CudaBackend::unregisterHostMemory(void* p) {
  std::lock_guard<std::mutex> lk(xferMu_);
  auto it = registered_.find(p);
  if (it == registered_.end()) return;
  cudaSetDevice(device_);
  cudaHostUnregister(p);
  cudaGetLastError();
  registered_.erase(it);
}

void CudaBackend::kvGather(const int32_t* blockIds, int numBlocks, int numTokens, void* hostDst) {
  copyKv(true, blockIds, numBlocks, numTokens, hostDst);
}

void CudaBackend::kvScatter(const int32_t* blockIds, int numBlocks, int numTokens, const void* hostSrc) {
  copyKv(false, blockIds, numBlocks, numTokens, const_cast<void*>(hostSrc));
}

void CudaBackend::copyKv(bool gather, const int32_t* blockIds, int numBlocks, int numTokens, void* host) {
  std::lock_guard<std::mutex> lk(xferMu_);
  const char* what = gather ? "kvGather" : "kvScatter";
  auto fail = [&](const std::string& m) { throw std::runtime_error(std::string("CUDA backend: ") + what + ": " + m); };
  check(cudaSetDevice(device_), "cudaSetDevice");
  if (!kv_.get()) fail("called before allocKvCache()");
  if (numTokens == 0) return;
  if (numTokens < 0 || numBlocks <= 0 || !blockIds || !host) fail("bad arguments");
  const int bs = blockSize_;
  const int used = (numTokens + bs - 1) / bs;
  if (used > numBlocks) fail(std::to_string(numTokens) + " tokens need " + std::to_string(used) + " blocks, got " + std::to_string(numBlocks));
  for (int i = 0; i < used; ++i)
    if (blockIds[i] < 0 || blockIds[i] >= numBlocks_) fail("block id " + std::to_string(blockIds[i]) + " out of range");

  const size_t rowBytes = (size_t)spec_.numKvHeads * spec_.headDim * dtypeSize(kvDtype_);
  const size_t planeTok = (size_t)numTokens * rowBytes;
  const int planes = spec_.numLayers * 2;
  const size_t cachePlane = (size_t)numBlocks_ * bs * rowBytes;
  const bool pinned = isPinned(host);
  const size_t chunkCap = std::max<size_t>(pinned ? (size_t)256 << 20 : (size_t)64 << 20, planeTok);
  const int perChunk = (int)std::min<size_t>(planes, chunkCap / planeTok);
  const size_t chunkBytes = (size_t)perChunk * planeTok;

  xferIds_.ensure(used * sizeof(int32_t), "KV transfer block ids");
  std::memcpy(xferIds_.get(), blockIds, used * sizeof(int32_t));
  xferDevIds_.ensure(used * sizeof(int32_t), "KV transfer block ids");
  check(cudaMemcpyAsync(xferDevIds_.get(), xferIds_.get(), used * sizeof(int32_t), cudaMemcpyHostToDevice, xferStream_),
        "upload block ids");
  xferStage_.ensure(chunkBytes, "KV transfer staging");
  const int32_t* ids = xferDevIds_.as<int32_t>();
  char* cache = (char*)kv_.get();
  char* stage = (char*)xferStage_.get();
  char* hostB = (char*)host;
  const int chunks = (planes + perChunk - 1) / perChunk;
  auto chunkPlanes = [&](int c) { return std::min(perChunk, planes - c * perChunk); };
  auto pack = [&](int c) {
    launchKvPack(cache + (size_t)c * perChunk * cachePlane, cachePlane, stage, chunkPlanes(c), ids, numTokens, bs,
                 rowBytes, xferStream_);
  };
  auto unpack = [&](int c) {
    launchKvUnpack(cache + (size_t)c * perChunk * cachePlane, cachePlane, stage, chunkPlanes(c), ids, numTokens, bs,
                   rowBytes, xferStream_);
  };

  if (pinned) {
    for (int c = 0; c < chunks; ++c) {
      char* h = hostB + (size_t)c * chunkBytes;
      const size_t n = chunkPlanes(c) * planeTok;
      if (gather) {
        pack(c);
        check(cudaMemcpyAsync(h, stage, n, cudaMemcpyDeviceToHost, xferStream_), "KV download");
      } else {
        check(cudaMemcpyAsync(stage, h, n, cudaMemcpyHostToDevice, xferStream_), "KV upload");
        unpack(c);
      }
    }
    check(cudaStreamSynchronize(xferStream_), what);
    return;
  }

  for (auto& b : bounce_) b.ensure(chunkBytes, "KV transfer bounce buffer");
  if (gather) {
    for (int c = 0; c <= chunks; ++c) {
      if (c < chunks) {
        pack(c);
        check(cudaMemcpyAsync(bounce_[c % 2].get(), stage, chunkPlanes(c) * planeTok, cudaMemcpyDeviceToHost, xferStream_),
              "KV download");
        check(cudaEventRecord(bounceDone_[c % 2], xferStream_), "event record");
      }
      if (c > 0) {  // copy out the previous chunk while this one is in flight
        const int pc = c - 1;
        check(cudaEventSynchronize(bounceDone_[pc % 2]), "KV download");
        parallelMemcpy(hostB + (size_t)pc * chunkBytes, bounce_[pc % 2].get(), chunkPlanes(pc) * planeTok);
      }
    }
  } else {
    for (int c = 0; c < chunks; ++c) {
      if (c >= 2) check(cudaEventSynchronize(bounceDone_[c % 2]), "KV upload");
      const size_t n = chunkPlanes(c) * planeTok;
      parallelMemcpy(bounce_[c % 2].get(), hostB + (size_t)c * chunkBytes, n);
      check(cudaMemcpyAsync(stage, bounce_[c % 2].get(), n, cudaMemcpyHostToDevice, xferStream_), "KV upload");
      check(cudaEventRecord(bounceDone_[c % 2], xferStream_), "event record");
      unpack(c);
    }
  }
  check(cudaStreamSynchronize(xferStream_), what);
}

}  // namespace pds::cuda
