// The asynchronous forward path for backends with their own device queue (Backend::asyncForward: cuda).
// All on the JS thread: one forward in flight, the rest queued in call order. forwardBegin enqueues the
// device work; a setImmediate poll asks forwardReady every event-loop turn and settles the promise after
// forwardEnd. No worker-thread handoff on either side (a libuv pool round trip cost ~0.35 ms per decode step
// on the GPU host).
#pragma once
#include <napi.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "model-job.h"

namespace pds::binding {

class ForwardQueue {
 public:
  // fill: fills the batch and allocates the outputs, returns logitsOut (or null); make: the promise's value.
  using Fill = std::function<float*(BatchDesc&)>;
  using Make = std::function<Napi::Value(Napi::Env)>;
  // hold(true) when the queue starts working, hold(false) when it drains: the owner keeps its JS object
  // alive (Ref/Unref) while a forward is in flight.
  explicit ForwardQueue(std::function<void(bool)> hold) : hold_(std::move(hold)) {}

  void attach(std::shared_ptr<ModelShared> sh) { sh_ = std::move(sh); }
  // Queues one forward; its promise settles in call order.
  Napi::Promise push(Napi::Env env, Fill fill, Make make);
  // Rejects the forward in flight and everything queued with Error(why), and lets go of the backend.
  void failAll(Napi::Env env, const std::string& why);

 private:
  struct Call {
    Fill fill;
    Make make;
    Napi::Promise::Deferred deferred;
  };
  bool usable() const { return sh_ && sh_->be && !sh_->disposed; }
  void beginNext(Napi::Env env);  // forwardBegin of the next queued call that starts cleanly
  void schedulePoll(Napi::Env env);
  void poll(Napi::Env env);
  void setBusy(bool busy);

  std::function<void(bool)> hold_;
  std::shared_ptr<ModelShared> sh_;
  std::deque<std::shared_ptr<Call>> queue_;
  std::shared_ptr<Call> inflight_;
  bool busy_ = false;
  Napi::FunctionReference setImmediate_, pollFn_;  // made once (the poll runs every loop turn while a forward flies)
};

}  // namespace pds::binding
