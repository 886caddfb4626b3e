// Persistent worker pool: run(fn) executes fn(tid, nthreads) on every thread (the caller is tid 0)
// and returns when all are done. Workers spin briefly between jobs (kernels come in quick succession
// during a forward pass), then sleep. One run() at a time (serialized by a mutex).
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

  // Static split of [0, n) into contiguous ranges (multiples of grain), f(begin, end) per thread.
  template <class F>
  void parallelRange(int64_t n, int64_t grain, F&& f) {
    if (n <= 0) return;
    int64_t units = (n + grain - 1) / grain;
    int nt = static_cast<int>(units < n_ ? units : n_);
    if (nt <= 1) return f(int64_t(0), n);
    run([&](int tid, int) {
      if (tid >= nt) return;
      int64_t b = units * tid / nt * grain, e = units * (tid + 1) / nt * grain;
      if (e > n) e = n;
      if (b < e) f(b, e);
    });
  }
  // Dynamic split of [0, n) into about 4 contiguous chunks per thread (multiples of grain), claimed in
  // order; balances when a thread is slowed (busy machine) while keeping streams mostly sequential.
  template <class F>
  void parallelChunks(int64_t n, int64_t grain, F&& f) {
    if (n <= 0) return;
    int64_t units = (n + grain - 1) / grain;
    int64_t chunks = units < int64_t(n_) * 4 ? units : int64_t(n_) * 4;
    if (chunks <= 1 || n_ == 1) return f(int64_t(0), n);
    std::atomic<int64_t> next{0};
    run([&](int, int) {
      for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
        int64_t b = units * c / chunks * grain, e = units * (c + 1) / chunks * grain;
        if (e > n) e = n;
        if (b < e) f(b, e);
      }
    });
  }
  // Dynamic: items [0, n) claimed one at a time, f(i).
  template <class F>
  void parallelFor(int64_t n, F&& f) {
    if (n <= 0) return;
    if (n == 1 || n_ == 1) {
      for (int64_t i = 0; i < n; i++) f(i);
      return;
    }
    std::atomic<int64_t> next{0};
    run([&](int, int) {
      for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) f(i);
    });
  }

 private:
  void workerLoop(int tid);
  int n_;
  std::vector<std::thread> workers_;
  std::mutex runMu_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::exception_ptr error_;
  std::mutex errMu_;
};

// Shared pool for the ops test entry points and measurement probes (created on first use;
// PDSERVE_OPS_THREADS sets its size, default all cores).
ThreadPool& defaultPool();

}  // namespace pds::cpu
