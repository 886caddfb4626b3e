// CudaBackend::measureDeviceLimits: the ceilings the benchmarks divide by, measured on this GPU now.
//   bandwidth: 1 GiB device-to-device copy, (read + written bytes) / time, median of 10 after 2 warm-ups
//   GEMM: cuBLAS 8192 x 8192 x 8192 in the weight dtype (f32 accumulation), best of 10 after 3 warm-ups
#include <algorithm>
#include <chrono>
#include <vector>

#include "common.cuh"
#include "cuda-backend.h"
#include "kernels.h"

namespace pds::cuda {
namespace {

template <typename F> std::vector<double> timesMs(cudaStream_t s, int warm, int reps, F&& fn) {
  for (int i = 0; i < warm; ++i) fn();
  check(cudaStreamSynchronize(s), "measure: warm-up");
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    check(cudaStreamSynchronize(s), "measure");
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t;
}

}  // namespace

bool CudaBackend::measureDeviceLimits(DeviceLimits* out) {
  std::lock_guard<std::mutex> lk(computeMu_);
  check(cudaSetDevice(device_), "cudaSetDevice");
  {
    const size_t bytes = (size_t)1 << 30;
    DeviceBuffer a, b;
    a.alloc(bytes, "bandwidth probe");
    b.alloc(bytes, "bandwidth probe");
    launchFillRandom(DType::F32, a.get(), bytes / 4, 3, 1.f, 0.f, stream_);
    const auto t = timesMs(stream_, 2, 10, [&] {
      check(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream_), "bandwidth probe");
    });
    out->readBandwidthGBs = 2.0 * bytes / (t[t.size() / 2] * 1e-3) / 1e9;
  }
  {
    const int n = 8192;
    const DType dt = spec_.weightDtype;
    const size_t numel = (size_t)n * n;
    DeviceBuffer x, w, y;
    x.alloc(numel * elem_, "GEMM probe");
    w.alloc(numel * elem_, "GEMM probe");
    y.alloc(numel * elem_, "GEMM probe");
    launchFillRandom(dt, x.get(), numel, 1, 1.f, 0.f, stream_);
    launchFillRandom(dt, w.get(), numel, 2, 0.02f, 0.f, stream_);
    const auto t = timesMs(stream_, 3, 10, [&] { blas_->gemm(dt, x.get(), w.get(), y.get(), n, n, n, false); });
    out->matmulPeakGflops = 2.0 * n * n * (double)n / (t.front() * 1e-3) / 1e9;
  }
  return true;
}

}  // namespace pds::cuda
