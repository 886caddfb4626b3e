// ThreadPool: generation counter + spin-then-sleep workers.
#include "thread-pool.h"

#include <immintrin.h>

#include <cstdlib>

namespace pds::cpu {

namespace {
constexpr int kSpinIters = 20000;  // ~0.1 ms of pause loops before sleeping
}

ThreadPool::ThreadPool(int threads) {
  n_ = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n_ < 1) n_ = 1;
  for (int t = 1; t < n_; t++) workers_.emplace_back([this, t] { workerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
    gen_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::workerLoop(int tid) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g;
    int spins = 0;
    while ((g = gen_.load(std::memory_order_acquire)) == seen && spins < kSpinIters) {
      _mm_pause();
      spins++;
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lk, [&] { return gen_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
      g = gen_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    try {
      (*job_)(tid, n_);
    } catch (...) {
      std::lock_guard<std::mutex> lk(errMu_);
      if (!error_) error_ = std::current_exception();
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_ == 1) return fn(0, 1);
  std::lock_guard<std::mutex> runLock(runMu_);
  error_ = nullptr;
  job_ = &fn;
  pending_.store(n_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lk(mu_);
    gen_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load() > 0) cv_.notify_all();
  std::exception_ptr mine;
  try {
    fn(0, n_);
  } catch (...) {
    mine = std::current_exception();
  }
  // On a busy machine a worker may be descheduled: stop burning the core after a short spin.
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; spins++) {
    if (spins < 4000)
      _mm_pause();
    else
      std::this_thread::yield();
  }
  job_ = nullptr;
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(error_);
}

ThreadPool& defaultPool() {
  static ThreadPool pool(std::getenv("PDSERVE_OPS_THREADS") ? std::atoi(std::getenv("PDSERVE_OPS_THREADS")) : 0);
  return pool;
}

}  // namespace pds::cpu
