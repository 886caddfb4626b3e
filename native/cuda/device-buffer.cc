// Device and pinned-host allocations with readable out-of-memory errors.
#include "device-buffer.h"

#include <cstdio>
#include <stdexcept>

namespace pds::cuda {

std::string gib(size_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f GiB", bytes / 1073741824.0);
  return b;
}

void DeviceBuffer::alloc(size_t bytes, const char* what) {
  reset();
  if (!bytes) return;
  const cudaError_t e = cudaMalloc(&ptr_, bytes);
  if (e != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();
    size_t freeB = 0, total = 0;
    cudaMemGetInfo(&freeB, &total);
    throw std::runtime_error(std::string("CUDA backend: out of GPU memory allocating ") + what + " (" + gib(bytes) +
                             " requested, " + gib(freeB) + " free of " + gib(total) + "): " + cudaGetErrorString(e));
  }
  bytes_ = bytes;
}

void DeviceBuffer::reset() {
  if (ptr_) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

void PinnedBuffer::ensure(size_t bytes, const char* what) {
  if (bytes <= bytes_) return;
  reset();
  const cudaError_t e = cudaHostAlloc(&ptr_, bytes, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();
    throw std::runtime_error(std::string("CUDA backend: cannot allocate pinned host memory for ") + what + " (" +
                             gib(bytes) + "): " + cudaGetErrorString(e));
  }
  bytes_ = bytes;
}

void PinnedBuffer::reset() {
  if (ptr_) cudaFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

}  // namespace pds::cuda
