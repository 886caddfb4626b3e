// Owning RAII wrappers for device memory, pinned host memory, streams and events (CUDA backend).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

namespace pds::cuda {

// Device allocation; `what` names it in the out-of-memory error.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_); std::swap(bytes_, o.bytes_); return *this;
  }
  ~DeviceBuffer() { reset(); }
  void alloc(size_t bytes, const char* what);   // frees the old one first; throws on OOM with sizes
  // Grows (never shrinks); returns true when the buffer moved.
  bool ensure(size_t bytes, const char* what) { if (bytes <= bytes_) return false; alloc(bytes, what); return true; }
  void reset();
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { reset(); }
  void ensure(size_t bytes, const char* what);
  void reset();
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

std::string gib(size_t bytes);  // "1.23 GiB"

}  // namespace pds::cuda
