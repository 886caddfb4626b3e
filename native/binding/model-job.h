// What a NativeModel shares with its in-flight work, and the worker-thread job that runs backend calls.
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "js-error.h"
#include "pds/backend.h"

namespace pds::binding {

// Owned by the JS object and by every job in flight: dispose() during a job frees the backend only when the
// job finishes (~ModelShared). `mu` serializes worker jobs and the synchronous calls (one backend call at a time).
struct ModelShared {
  std::unique_ptr<Backend> be;
  std::mutex mu;
  std::atomic<bool> disposed{false};
};

// Runs fn on a libuv worker thread under sh->mu; resolves with make(env) (undefined when make is null) or
// rejects with fn's exception mapped by js-error.h. A disposed model rejects with "model disposed".
class ModelJob : public Napi::AsyncWorker {
 public:
  using Fn = std::function<void()>;
  using Make = std::function<Napi::Value(Napi::Env)>;
  ModelJob(Napi::Env env, std::shared_ptr<ModelShared> sh, Fn fn, Make make)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), sh_(std::move(sh)), fn_(std::move(fn)),
        make_(std::move(make)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  std::vector<Napi::ObjectReference> keep;  // typed arrays the job reads or writes, alive until it settles

  void Execute() override {
    std::lock_guard<std::mutex> lk(sh_->mu);
    try {
      if (!sh_->be || sh_->disposed) throw std::runtime_error("model disposed");
      fn_();
    } catch (const std::exception& e) {
      error_ = captureError(e);
      SetError(error_.message);
    }
  }
  void OnOK() override { deferred_.Resolve(make_ ? make_(Env()) : Env().Undefined()); }
  void OnError(const Napi::Error&) override { deferred_.Reject(toJsError(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ModelShared> sh_;
  Fn fn_;
  Make make_;
  CapturedError error_;
};

}  // namespace pds::binding
