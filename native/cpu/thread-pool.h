// Persistent worker pool. Two ways to run a job:
//  - run(fn): fn(tid, nthreads) on every thread (caller is tid 0), a full barrier. For probes that need
//    every thread (peak measurement).
//  - the parallel* helpers: work is split into pieces claimed through an atomic counter; the caller works
//    too, and a worker that wakes up after the caller has claimed everything simply skips the job. So on a
//    busy machine a descheduled worker never stalls a kernel: the caller finishes the work alone.
// Workers spin briefly between jobs (kernels come in quick succession during a forward), then sleep.
// One job at a time (serialized by a mutex).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pds::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: std::thread::hardware_concurrency()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }
  // Runs fn(tid, nthreads) on all threads; rethrows the first exception thrown by any of them.
  void run(const std::function<void(int, int)>& fn);
  // Runs fn() on the caller and on the workers that join before the caller is done; fn must claim its work
  // dynamically so that it all gets done by whoever runs. Rethrows the first exception.
  void runShared(const std::function<void()>& fn);

  // [0, n) in size() contiguous ranges (multiples of grain), f(begin, end) per range.
  template <class F>
  void parallelRange(int64_t n, int64_t grain, F&& f) {
    splitClaimed(n, grain, n_, f);
  }
  // [0, n) in about 4 contiguous chunks per thread (multiples of grain), claimed in order.
  template <class F>
  void parallelChunks(int64_t n, int64_t grain, F&& f) {
    splitClaimed(n, grain, int64_t(n_) * 4, f);
  }
  // Items [0, n) claimed one at a time, f(i).
  template <class F>
  void parallelFor(int64_t n, F&& f) {
    if (n <= 0) return;
    if (n == 1 || n_ == 1) {
      for (int64_t i = 0; i < n; i++) f(i);
      return;
    }
    std::atomic<int64_t> next{0};
    runShared([&] {
      for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) f(i);
    });
  }

 private:
  template <class F>
  void splitClaimed(int64_t n, int64_t grain, int64_t maxPieces, F& f) {
    if (n <= 0) return;
    const int64_t units = (n + grain - 1) / grain;
    const int64_t pieces = units < maxPieces ? units : maxPieces;
    if (pieces <= 1 || n_ == 1) return f(int64_t(0), n);
    std::atomic<int64_t> next{0};
    runShared([&] {
      for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < pieces;) {
        int64_t b = units * c / pieces * grain, e = units * (c + 1) / pieces * grain;
        if (e > n) e = n;
        if (b < e) f(b, e);
      }
    });
  }
  void workerLoop(int tid);
  void publish(bool shared);
  void recordError();

  int n_;
  std::vector<std::thread> workers_;
  std::mutex runMu_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  const std::function<void()>* shared_ = nullptr;
  std::atomic<uint64_t> gen_{0};
  // Shared jobs: (generation << 32) | closed bit (1 << 31) | number of workers that joined.
  std::atomic<uint64_t> join_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::exception_ptr error_;
  std::mutex errMu_;
};

// Shared pool for the ops test entry points and measurement probes (created on first use;
// PDSERVE_OPS_THREADS sets its size, default all cores).
ThreadPool& defaultPool();

}  // namespace pds::cpu
