// ForwardQueue (forward-queue.h): the JS-thread queue and poll loop of asynchronous forwards.
#include "forward-queue.h"

namespace pds::binding {

Napi::Promise ForwardQueue::push(Napi::Env env, Fill fill, Make make) {
  auto call = std::make_shared<Call>(Call{std::move(fill), std::move(make), Napi::Promise::Deferred::New(env)});
  queue_.push_back(call);
  if (!busy_) beginNext(env);
  return call->deferred.Promise();
}

void ForwardQueue::setBusy(bool busy) {
  if (busy == busy_) return;
  busy_ = busy;
  hold_(busy);
}

void ForwardQueue::failAll(Napi::Env env, const std::string& why) {
  const Napi::Error err = Napi::Error::New(env, why);
  if (inflight_) inflight_->deferred.Reject(err.Value());
  inflight_.reset();
  for (auto& c : queue_) c->deferred.Reject(err.Value());
  queue_.clear();
  sh_.reset();
  setBusy(false);
}

void ForwardQueue::beginNext(Napi::Env env) {
  while (!queue_.empty()) {
    auto call = queue_.front();
    queue_.pop_front();
    if (!usable()) {
      call->deferred.Reject(Napi::Error::New(env, "model disposed").Value());
      continue;
    }
    try {
      BatchDesc d;
      float* logits = call->fill(d);
      sh_->be->forwardBegin(d, logits);
    } catch (const std::exception& e) {
      call->deferred.Reject(toJsError(env, e).Value());
      continue;
    }
    inflight_ = call;
    setBusy(true);
    schedulePoll(env);
    return;
  }
  setBusy(false);
}

void ForwardQueue::schedulePoll(Napi::Env env) {
  if (pollFn_.IsEmpty()) {
    setImmediate_ = Napi::Persistent(env.Global().Get("setImmediate").As<Napi::Function>());
    pollFn_ = Napi::Persistent(
        Napi::Function::New(env, [this](const Napi::CallbackInfo& info) { poll(info.Env()); }, "pdsForwardPoll"));
  }
  setImmediate_.Call({pollFn_.Value()});
}

void ForwardQueue::poll(Napi::Env env) {
  if (!inflight_) return;
  if (!usable()) {
    failAll(env, "model disposed");
    return;
  }
  bool ready = true;
  try {
    ready = sh_->be->forwardReady();
  } catch (const std::exception&) {
    ready = true;  // forwardEnd reports it
  }
  if (!ready) {
    schedulePoll(env);
    return;
  }
  auto call = std::move(inflight_);
  try {
    sh_->be->forwardEnd();
    call->deferred.Resolve(call->make(env));
  } catch (const std::exception& e) {
    call->deferred.Reject(toJsError(env, e).Value());
  }
  beginNext(env);
}

}  // namespace pds::binding
