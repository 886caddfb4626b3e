// ThreadPool: generation counter + spin-then-sleep workers; shared jobs are joined with a tagged CAS so a
// late worker can never touch a finished job.
#include "thread-pool.h"

#include <immintrin.h>

#include <cstdlib>

namespace pds::cpu {

namespace {
constexpr int kSpinIters = 20000;  // pause loops before a worker sleeps
constexpr uint64_t kClosed = uint64_t(1) << 31;

void waitUntil(const std::atomic<int>& a, int value) {
  for (int spins = 0; a.load(std::memory_order_acquire) != value; spins++) {
    if (spins < 4000)
      _mm_pause();
    else
      std::this_thread::yield();  // the worker we wait for may be descheduled
  }
}
}  // namespace

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

void ThreadPool::recordError() {
  std::lock_guard<std::mutex> lk(errMu_);
  if (!error_) error_ = std::current_exception();
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
    uint64_t j = join_.load(std::memory_order_acquire);
    if ((j >> 32) != (g & 0xffffffffu)) continue;  // not a shared job (or an older one)
    if (j & uint64_t(1) << 30) {                    // full barrier job: everyone runs
      try {
        (*job_)(tid, n_);
      } catch (...) {
        recordError();
      }
      done_.fetch_add(1, std::memory_order_acq_rel);
      continue;
    }
    bool joined = false;
    while (!(j & kClosed) && (j >> 32) == (g & 0xffffffffu)) {
      if (join_.compare_exchange_weak(j, j + 1, std::memory_order_acq_rel)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    try {
      (*shared_)();
    } catch (...) {
      recordError();
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

// Under runMu_: makes the job visible to the workers and wakes them.
void ThreadPool::publish(bool barrier) {
  error_ = nullptr;
  done_.store(0, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t g = gen_.load(std::memory_order_relaxed) + 1;
  join_.store(((g & 0xffffffffu) << 32) | (barrier ? uint64_t(1) << 30 : 0), std::memory_order_release);
  gen_.store(g, std::memory_order_release);
  if (sleepers_.load() > 0) cv_.notify_all();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_ == 1) return fn(0, 1);
  std::lock_guard<std::mutex> runLock(runMu_);
  job_ = &fn;
  publish(true);
  std::exception_ptr mine;
  try {
    fn(0, n_);
  } catch (...) {
    mine = std::current_exception();
  }
  waitUntil(done_, n_ - 1);
  job_ = nullptr;
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::runShared(const std::function<void()>& fn) {
  if (n_ == 1) return fn();
  std::lock_guard<std::mutex> runLock(runMu_);
  shared_ = &fn;
  publish(false);
  std::exception_ptr mine;
  try {
    fn();
  } catch (...) {
    mine = std::current_exception();
  }
  // Close the job: workers that have not joined yet never will; wait for those that did.
  const int joined = static_cast<int>(join_.fetch_or(kClosed, std::memory_order_acq_rel) & 0x3fffffffu);
  waitUntil(done_, joined);
  shared_ = nullptr;
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(error_);
}

ThreadPool& defaultPool() {
  static ThreadPool pool(std::getenv("PDSERVE_OPS_THREADS") ? std::atoi(std::getenv("PDSERVE_OPS_THREADS")) : 0);
  return pool;
}

}  // namespace pds::cpu
