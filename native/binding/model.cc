// createModel(spec, opts) -> NativeModel (src/native/binding.ts). A thin wrapper over pds::Backend:
// argument checks, async workers for forward / KV transfer, no math. The backend is shared with in-flight
// workers, so dispose() during a forward frees memory only when that forward finishes. Backends with their
// own queue (Backend::asyncForward: cuda) run forwards without workers: enqueued on the JS thread, polled
// from setImmediate, completed there.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <atomic>
#include <functional>
#include <deque>
#include <memory>
#include <stdexcept>
#include <mutex>
#include <unordered_map>

#include "args.h"
#include "model-spec.h"
#include "pds/backend.h"
#include "register.h"
#include "kv-host.h"

namespace pds::binding {
namespace {

struct Shared {
  std::unique_ptr<Backend> be;
  std::mutex mu;  // one forward / KV transfer at a time
  std::atomic<bool> disposed{false};
};

// Runs fn on a libuv worker thread; resolves with make(env) or rejects with the matching JS error class.
class Job : public Napi::AsyncWorker {
 public:
  using Fn = std::function<void()>;
  using Make = std::function<Napi::Value(Napi::Env)>;
  Job(Napi::Env env, std::shared_ptr<Shared> sh, Fn fn, Make make)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), sh_(std::move(sh)), fn_(std::move(fn)),
        make_(std::move(make)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  std::vector<Napi::ObjectReference> keep;  // typed arrays the job reads or writes

  void Execute() override {
    std::lock_guard<std::mutex> lk(sh_->mu);
    try {
      if (!sh_->be || sh_->disposed) throw std::runtime_error("model disposed");
      fn_();
    } catch (const std::out_of_range& e) {
      kind_ = 1;
      SetError(e.what());
    } catch (const std::invalid_argument& e) {
      kind_ = 2;
      SetError(e.what());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(make_ ? make_(Env()) : Env().Undefined()); }
  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    std::string msg = e.Message();
    Napi::Error err = kind_ == 1 ? Napi::RangeError::New(env, msg)
                      : kind_ == 2 ? Napi::TypeError::New(env, msg)
                                   : Napi::Error::New(env, msg);
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Shared> sh_;
  Fn fn_;
  Make make_;
  int kind_ = 0;
};

Napi::Value rejected(Napi::Env env, const Napi::Error& e) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(e.Value());
  return d.Promise();
}

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceAccessor<&Model::DeviceName>("deviceName"),
                        InstanceMethod<&Model::LoadTensor>("loadTensor"),
                        InstanceMethod<&Model::InitDummy>("initDummyWeights"),
                        InstanceMethod<&Model::Finalize>("finalizeWeights"),
                        InstanceMethod<&Model::WeightBytes>("weightBytes"),
                        InstanceMethod<&Model::AllocKv>("allocKvCache"),
                        InstanceMethod<&Model::KvBytesPerToken>("kvBytesPerToken"),
                        InstanceMethod<&Model::FreeMemory>("freeMemoryBytes"),
                        InstanceMethod<&Model::MeasureDeviceLimits>("measureDeviceLimits"),
                        InstanceMethod<&Model::RegisterHostMemory>("registerHostMemory"),
                        InstanceMethod<&Model::UnregisterHostMemory>("unregisterHostMemory"),
                        InstanceMethod<&Model::Forward>("forward"),
                        InstanceMethod<&Model::ForwardSample>("forwardSample"),
                        InstanceMethod<&Model::KvGather>("kvGather"),
                        InstanceMethod<&Model::KvScatter>("kvScatter"),
                        InstanceMethod<&Model::KvExportIpc>("kvExportIpc"),
                        InstanceMethod<&Model::KvHostRegion>("kvHostRegion"),
                        InstanceMethod<&Model::KvImportPeer>("kvImportPeer"),
                        InstanceMethod<&Model::KvCopyFromPeer>("kvCopyFromPeer"),
                        InstanceMethod<&Model::Dispose>("dispose")});
  }
  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {}
  void attach(std::unique_ptr<Backend> be) {
    sh_ = std::make_shared<Shared>();
    sh_->be = std::move(be);
    spec_ = sh_->be->spec();
    device_ = sh_->be->name();
  }

 private:
  // ---- asynchronous forwards (Backend::asyncForward): one in flight, the rest queued, all on the JS thread ----
  struct AsyncCall {
    std::function<float*(BatchDesc&)> fill;  // fills the batch, allocates the outputs; returns logitsOut (or null)
    std::function<Napi::Value(Napi::Env)> make;
    Napi::Promise::Deferred deferred;
  };
  std::deque<std::shared_ptr<AsyncCall>> asyncQueue_;
  std::shared_ptr<AsyncCall> asyncInflight_;
  bool asyncBusy_ = false;

  static void RejectWith(Napi::Env env, const Napi::Promise::Deferred& d, const std::exception& e) {
    const std::string msg = e.what();
    Napi::Error err = dynamic_cast<const std::out_of_range*>(&e)      ? Napi::RangeError::New(env, msg)
                      : dynamic_cast<const std::invalid_argument*>(&e) ? Napi::TypeError::New(env, msg)
                                                                       : Napi::Error::New(env, msg);
    d.Reject(err.Value());
  }
  void FailAllAsync(Napi::Env env, const std::string& why) {
    std::runtime_error e(why);
    if (asyncInflight_) RejectWith(env, asyncInflight_->deferred, e);
    asyncInflight_.reset();
    for (auto& c : asyncQueue_) RejectWith(env, c->deferred, e);
    asyncQueue_.clear();
    if (asyncBusy_) { asyncBusy_ = false; Unref(); }
  }
  // Starts the next queued forward (forwardBegin on this thread), then polls it from setImmediate.
  void BeginNextAsync(Napi::Env env) {
    while (!asyncQueue_.empty()) {
      auto call = asyncQueue_.front();
      asyncQueue_.pop_front();
      if (!sh_ || !sh_->be || sh_->disposed) { RejectWith(env, call->deferred, std::runtime_error("model disposed")); continue; }
      try {
        BatchDesc d;
        float* logits = call->fill(d);
        sh_->be->forwardBegin(d, logits);
      } catch (const std::exception& e) {
        RejectWith(env, call->deferred, e);
        continue;
      }
      asyncInflight_ = call;
      if (!asyncBusy_) { asyncBusy_ = true; Ref(); }  // the JS object outlives its forward in flight
      SchedulePoll(env);
      return;
    }
    if (asyncBusy_) { asyncBusy_ = false; Unref(); }
  }
  // setImmediate and the poll callback, made once per model (the poll runs every loop turn while a forward flies).
  Napi::FunctionReference setImmediate_, pollFn_;
  void SchedulePoll(Napi::Env env) {
    if (pollFn_.IsEmpty()) {
      setImmediate_ = Napi::Persistent(env.Global().Get("setImmediate").As<Napi::Function>());
      pollFn_ = Napi::Persistent(Napi::Function::New(env, [this](const Napi::CallbackInfo& info) { PollAsync(info.Env()); }, "pdsForwardPoll"));
    }
    setImmediate_.Call({pollFn_.Value()});
  }
  void PollAsync(Napi::Env env) {
    if (!asyncInflight_) return;
    if (!sh_ || !sh_->be || sh_->disposed) { FailAllAsync(env, "model disposed"); return; }
    bool ready = true;
    try { ready = sh_->be->forwardReady(); } catch (const std::exception&) { ready = true; }  // forwardEnd reports it
    if (!ready) { SchedulePoll(env); return; }
    auto call = std::move(asyncInflight_);
    try {
      sh_->be->forwardEnd();
      call->deferred.Resolve(call->make(env));
    } catch (const std::exception& e) {
      RejectWith(env, call->deferred, e);
    }
    BeginNextAsync(env);
  }

  Backend& be(const Napi::Env& env) {
    if (!sh_ || !sh_->be) throw Napi::Error::New(env, "model disposed");
    return *sh_->be;
  }
  // Synchronous calls take the lock too, so they never race a forward running on a worker.
  template <class F>
  auto locked(const Napi::Env& env, F&& f) {
    Backend& b = be(env);
    std::lock_guard<std::mutex> lk(sh_->mu);
    return guarded(env, [&] { return f(b); });
  }

  Napi::Value DeviceName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), device_); }

  Napi::Value LoadTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = stringArg(env, info[0], "loadTensor: name");
    std::string path = stringArg(env, info[1], "loadTensor: path");
    int64_t offset = intArg(env, info[2], "loadTensor: offset", 0, int64_t(1) << 50);
    int64_t nbytes = intArg(env, info[3], "loadTensor: nbytes", 0, int64_t(1) << 40);
    DType dt = dtypeArg(env, info[4], "loadTensor: dtype");
    if (!info[5].IsArray()) throw Napi::TypeError::New(env, "loadTensor: shape must be an array of integers");
    Napi::Array sa = info[5].As<Napi::Array>();
    std::vector<int64_t> shape;
    int64_t elems = 1;
    for (uint32_t i = 0; i < sa.Length(); i++) {
      shape.push_back(intArg(env, sa.Get(i), "loadTensor: shape[" + std::to_string(i) + "]", 0, int64_t(1) << 40));
      elems *= shape.back();
    }
    if (elems * static_cast<int64_t>(dtypeSize(dt)) != nbytes)
      throw Napi::RangeError::New(env, "loadTensor: " + name + ": nbytes " + std::to_string(nbytes) +
                                           " does not match shape x dtype size (" +
                                           std::to_string(elems * dtypeSize(dt)) + ")");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Napi::Error::New(env, "loadTensor: open " + path + ": " + std::strerror(errno));
    std::unique_ptr<char[]> buf(new (std::nothrow) char[nbytes > 0 ? nbytes : 1]);
    if (!buf) {
      ::close(fd);
      throw Napi::Error::New(env, "loadTensor: out of memory for " + name);
    }
    int64_t done = 0;
    while (done < nbytes) {
      ssize_t r = ::pread(fd, buf.get() + done, static_cast<size_t>(nbytes - done), static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        int e = errno;
        ::close(fd);
        throw Napi::Error::New(env, "loadTensor: " + name + ": read of " + path + " at " + std::to_string(offset + done) +
                                        (r == 0 ? " hit end of file" : std::string(": ") + std::strerror(e)));
      }
      done += r;
    }
    ::close(fd);
    locked(env, [&](Backend& b) {
      b.setWeight(name, buf.get(), dt, shape);
      return 0;
    });
    return env.Undefined();
  }

  Napi::Value InitDummy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t seed = static_cast<uint64_t>(intArg(env, info[0], "initDummyWeights: seed", 0, int64_t(1) << 53));
    locked(env, [&](Backend& b) {
      b.initDummyWeights(seed);
      return 0;
    });
    return env.Undefined();
  }
  Napi::Value Finalize(const Napi::CallbackInfo& info) {
    locked(info.Env(), [&](Backend& b) {
      b.finalizeWeights();
      return 0;
    });
    return info.Env().Undefined();
  }
  Napi::Value WeightBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(locked(info.Env(), [](Backend& b) { return b.weightBytes(); })));
  }
  Napi::Value AllocKv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int nb = static_cast<int>(intArg(env, info[0], "allocKvCache: numBlocks", 1, INT32_MAX));
    int bs = static_cast<int>(intArg(env, info[1], "allocKvCache: blockSize", 1, 1 << 16));
    DType dt = dtypeArg(env, info[2], "allocKvCache: kvDtype");
    locked(env, [&](Backend& b) {
      b.allocKvCache(nb, bs, dt);
      blockSize_ = bs;
      return 0;
    });
    return env.Undefined();
  }
  Napi::Value KvBytesPerToken(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(),
                             static_cast<double>(locked(info.Env(), [](Backend& b) { return b.kvBytesPerToken(); })));
  }
  Napi::Value FreeMemory(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(),
                             static_cast<double>(locked(info.Env(), [](Backend& b) { return b.freeMemoryBytes(); })));
  }
  // registerHostMemory(view: Uint8Array) -> boolean: page-locks the view's bytes for the device's transfers
  // (synchronous; pins every page). unregisterHostMemory(view) undoes it; call it before the memory goes away.
  Napi::Value RegisterHostMemory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto v = u8Arg(env, info[0], "registerHostMemory: view");
    const bool ok = locked(env, [&](Backend& b) { return b.registerHostMemory(v.Data(), v.ByteLength()); });
    return Napi::Boolean::New(env, ok);
  }
  Napi::Value UnregisterHostMemory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto v = u8Arg(env, info[0], "unregisterHostMemory: view");
    locked(env, [&](Backend& b) { b.unregisterHostMemory(v.Data()); return 0; });
    return env.Undefined();
  }

  // { readBandwidthGBs, matmulPeakGflops } measured on the device, or null (cpu: use the host probes).
  // Synchronous: seconds on the JS thread; meant for benchmarks only.
  Napi::Value MeasureDeviceLimits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Backend::DeviceLimits lim;
    const bool ok = locked(env, [&](Backend& b) { return b.measureDeviceLimits(&lim); });
    if (!ok) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("readBandwidthGBs", lim.readBandwidthGBs);
    o.Set("matmulPeakGflops", lim.matmulPeakGflops);
    return o;
  }

  // forward(batch) -> Promise<Float32Array> logits [numLogits, vocab]
  Napi::Value Forward(const Napi::CallbackInfo& info) { return RunForward(info, false); }
  // forwardSample(batch, sampling, wantLogits) -> Promise<{ tokens: Int32Array, logits: Float32Array | null }>
  // sampling: { temperature, topP, minP, u: Float32Array, topK: Int32Array }, one entry per logits row.
  Napi::Value ForwardSample(const Napi::CallbackInfo& info) { return RunForward(info, true); }

  Napi::Value RunForward(const Napi::CallbackInfo& info, bool sample) {
    Napi::Env env = info.Env();
    try {
      be(env);
      if (!info[0].IsObject()) throw Napi::TypeError::New(env, "forward: batch must be an object");
      Napi::Object o = info[0].As<Napi::Object>();
      auto tok = i32Arg(env, o.Get("tokenIds"), "batch.tokenIds", 1);
      const size_t T = tok.ElementLength();
      auto pos = i32Arg(env, o.Get("positions"), "batch.positions", T);
      auto slot = i32Arg(env, o.Get("slotMapping"), "batch.slotMapping", T);
      auto qsl = i32Arg(env, o.Get("queryStartLoc"), "batch.queryStartLoc", 2);
      const size_t S = qsl.ElementLength() - 1;
      auto ctx = i32Arg(env, o.Get("contextLens"), "batch.contextLens", S);
      int mb = static_cast<int>(intArg(env, o.Get("maxBlocksPerSeq"), "batch.maxBlocksPerSeq", 1, 1 << 24));
      auto bt = i32Arg(env, o.Get("blockTables"), "batch.blockTables", S * mb);
      auto li = i32Arg(env, o.Get("logitsIndices"), "batch.logitsIndices", 0);
      if (pos.ElementLength() != T || slot.ElementLength() != T)
        throw Napi::RangeError::New(env, "forward: tokenIds, positions and slotMapping must have the same length");
      if (ctx.ElementLength() != S) throw Napi::RangeError::New(env, "forward: contextLens must have queryStartLoc.length - 1 entries");
      const size_t R = li.ElementLength();
      struct In {
        std::vector<int32_t> tok, pos, slot, qsl, ctx, bt, li;
        std::vector<RowSampling> sampling;
      };
      auto in = std::make_shared<In>(In{i32Vec(tok), i32Vec(pos), i32Vec(slot), i32Vec(qsl), i32Vec(ctx), i32Vec(bt), i32Vec(li), {}});
      bool wantLogits = true;
      if (sample) {
        if (!info[1].IsObject()) throw Napi::TypeError::New(env, "forwardSample: sampling must be an object");
        Napi::Object so = info[1].As<Napi::Object>();
        auto temp = f32Arg(env, so.Get("temperature"), "sampling.temperature", R);
        auto topP = f32Arg(env, so.Get("topP"), "sampling.topP", R);
        auto minP = f32Arg(env, so.Get("minP"), "sampling.minP", R);
        auto u = f32Arg(env, so.Get("u"), "sampling.u", R);
        auto topK = i32Arg(env, so.Get("topK"), "sampling.topK", R);
        in->sampling.resize(R);
        for (size_t r = 0; r < R; ++r) {
          const float uu = u[r];
          if (!(uu >= 0.f && uu < 1.f)) throw Napi::RangeError::New(env, "forwardSample: sampling.u must be in [0, 1)");
          in->sampling[r] = RowSampling{temp[r], topP[r], minP[r], uu, topK[r]};
        }
        wantLogits = info[2].ToBoolean().Value();
      }
      const int vocab = spec_.vocabSize;
      // logits [numLogits, vocab], allocated uninitialized (the backend overwrites all of it) and handed to JS
      struct Out {
        float* logits = nullptr;
        size_t n = 0;
        std::vector<int32_t> tokens;
        ~Out() { delete[] logits; }
      };
      auto out = std::make_shared<Out>();
      // PDS_TRACE_FORWARD=1: every 20th call prints where its wall time went (JS call -> worker start ->
      // backend done -> promise settled), to tell binding overhead from device time.
      static const bool trace = [] { const char* e = std::getenv("PDS_TRACE_FORWARD"); return e && *e == '1'; }();
      using Clock = std::chrono::steady_clock;
      auto times = std::make_shared<std::array<Clock::time_point, 3>>();
      if (trace) (*times)[0] = Clock::now();
      auto sh = sh_;
      // BatchDesc over in/out (out's buffers allocated here): what the backend reads and writes.
      auto fill = [in, out, mb, vocab, wantLogits](BatchDesc& d) -> float* {
        d.numTokens = static_cast<int>(in->tok.size());
        d.numSeqs = static_cast<int>(in->ctx.size());
        d.tokenIds = in->tok.data();
        d.positions = in->pos.data();
        d.slotMapping = in->slot.data();
        d.queryStartLoc = in->qsl.data();
        d.contextLens = in->ctx.data();
        d.blockTables = in->bt.data();
        d.maxBlocksPerSeq = mb;
        d.numLogits = static_cast<int>(in->li.size());
        d.logitsIndices = in->li.data();
        if (!in->sampling.empty()) {
          out->tokens.resize(in->sampling.size());
          d.sampling = in->sampling.data();
          d.sampledTokens = out->tokens.data();
        }
        if (wantLogits && !out->logits) {
          out->n = static_cast<size_t>(d.numLogits) * vocab;
          if (out->n) out->logits = new float[out->n];
        }
        return out->logits;
      };
      auto make = [out, sample, wantLogits](Napi::Env env) -> Napi::Value {
        Napi::Value logits = env.Null();
        if (wantLogits) {
          if (!out->n) logits = Napi::Float32Array::New(env, 0);
          else {
            float* data = out->logits;
            const size_t n = out->n;
            out->logits = nullptr;  // owned by the ArrayBuffer from here
            auto ab = Napi::ArrayBuffer::New(env, data, n * 4, [](Napi::Env, void* p) { delete[] static_cast<float*>(p); });
            logits = Napi::Float32Array::New(env, n, ab, 0);
          }
        }
        if (!sample) return logits;
        Napi::Object r = Napi::Object::New(env);
        auto tokens = Napi::Int32Array::New(env, out->tokens.size());
        std::copy(out->tokens.begin(), out->tokens.end(), tokens.Data());
        r.Set("tokens", tokens);
        r.Set("logits", logits);
        return r;
      };
      if (sh->be->asyncForward()) {
        // Devices with their own queue: enqueue on this thread (host prep + launches, tens of us at decode),
        // then poll with setImmediate until done -- no worker-thread handoffs on either side (measured
        // ~0.35 ms per step through the libuv pool on the GPU host).
        auto call = std::make_shared<AsyncCall>(AsyncCall{fill, make, Napi::Promise::Deferred::New(env)});
        asyncQueue_.push_back(call);
        if (!asyncBusy_) BeginNextAsync(env);
        return call->deferred.Promise();
      }
      auto job = new Job(
          env, sh,
          [sh, in, out, mb, vocab, wantLogits, times, fill] {
            if (trace) (*times)[1] = Clock::now();
            BatchDesc d;
            fill(d);
            sh->be->forward(d, out->logits);
            if (trace) (*times)[2] = Clock::now();
          },
          [times, make](Napi::Env env) -> Napi::Value {
            if (trace) {
              static int calls = 0;
              const auto now = Clock::now();
              auto us = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); };
              if (++calls % 20 == 0)
                std::fprintf(stderr, "forward trace: call->worker %.0f us, backend %.0f us, done->settle %.0f us\n",
                             us((*times)[0], (*times)[1]), us((*times)[1], (*times)[2]), us((*times)[2], now));
            }
            return make(env);
          });
      Napi::Promise p = job->promise();
      job->Queue();
      return p;
    } catch (const Napi::Error& e) {
      return rejected(env, e);
    }
  }

  Napi::Value KvTransfer(const Napi::CallbackInfo& info, bool gather) {
    Napi::Env env = info.Env();
    const char* fn = gather ? "kvGather" : "kvScatter";
    try {
      Backend& b = be(env);
      auto ids = i32Arg(env, info[0], std::string(fn) + ": blockIds", 0);
      int64_t ntok = intArg(env, info[1], std::string(fn) + ": numTokens", 0, INT32_MAX);
      if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw Napi::TypeError::New(env, std::string(fn) + ": buffer must be a Uint8Array");
      auto buf = info[2].As<Napi::Uint8Array>();
      if (blockSize_ == 0) throw Napi::Error::New(env, std::string(fn) + ": KV cache not allocated");
      size_t need = static_cast<size_t>(ntok) * b.kvBytesPerToken();
      if (buf.ByteLength() < need)
        throw Napi::RangeError::New(env, std::string(fn) + ": buffer has " + std::to_string(buf.ByteLength()) +
                                             " bytes, needs " + std::to_string(need));
      if (static_cast<int64_t>(ids.ElementLength()) * blockSize_ < ntok)
        throw Napi::RangeError::New(env, std::string(fn) + ": " + std::to_string(ntok) + " tokens need more than " +
                                             std::to_string(ids.ElementLength()) + " blocks");
      auto idv = std::make_shared<std::vector<int32_t>>(i32Vec(ids));
      uint8_t* data = buf.Data();
      auto sh = sh_;
      int nt = static_cast<int>(ntok);
      auto job = new Job(
          env, sh,
          [sh, idv, nt, data, gather] {
            int nb = static_cast<int>(idv->size());
            if (gather)
              sh->be->kvGather(idv->data(), nb, nt, data);
            else
              sh->be->kvScatter(idv->data(), nb, nt, data);
          },
          nullptr);
      job->keep.push_back(Napi::Persistent(buf.As<Napi::Object>()));
      Napi::Promise p = job->promise();
      job->Queue();
      return p;
    } catch (const Napi::Error& e) {
      return rejected(env, e);
    }
  }
  Napi::Value KvGather(const Napi::CallbackInfo& info) { return KvTransfer(info, true); }
  Napi::Value KvScatter(const Napi::CallbackInfo& info) { return KvTransfer(info, false); }

  Napi::Value KvHostRegion(const Napi::CallbackInfo& info) { return kvHostRegionValue(info.Env(), be(info.Env())); }

  // --- KV peer transfer (backend.h): handle bytes out, handle bytes in, batched copy on a worker ---
  Napi::Value KvExportIpc(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string h = locked(env, [&](Backend& b) { return b.kvExportIpc(); });
    return Napi::Buffer<char>::Copy(env, h.data(), h.size());
  }
  Napi::Value KvImportPeer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "kvImportPeer: handle must be a Buffer/Uint8Array");
    auto a = info[0].As<Napi::Uint8Array>();
    std::string h(reinterpret_cast<const char*>(a.Data()), a.ByteLength());
    return Napi::Number::New(env, locked(env, [&](Backend& b) { return b.kvImportPeer(h); }));
  }
  Napi::Value KvCopyFromPeer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    try {
      be(env);
      int64_t peer = intArg(env, info[0], "kvCopyFromPeer: peer", 0, INT32_MAX);
      auto src = i32Arg(env, info[1], "kvCopyFromPeer: srcBlocks", 0);
      auto dst = i32Arg(env, info[2], "kvCopyFromPeer: dstBlocks", 0);
      if (src.ElementLength() != dst.ElementLength())
        throw Napi::RangeError::New(env, "kvCopyFromPeer: srcBlocks has " + std::to_string(src.ElementLength()) +
                                             " ids but dstBlocks has " + std::to_string(dst.ElementLength()));
      auto sv = std::make_shared<std::vector<int32_t>>(i32Vec(src));
      auto dv = std::make_shared<std::vector<int32_t>>(i32Vec(dst));
      auto sh = sh_;
      int pi = static_cast<int>(peer);
      auto job = new Job(
          env, sh, [sh, sv, dv, pi] { sh->be->kvCopyFromPeer(pi, sv->data(), dv->data(), static_cast<int>(sv->size())); }, nullptr);
      Napi::Promise p = job->promise();
      job->Queue();
      return p;
    } catch (const Napi::Error& e) {
      return rejected(env, e);
    }
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (sh_) {
      auto sh = std::move(sh_);
      sh->disposed = true;
      // Free now unless a job is running; otherwise the last job to finish frees it (~Shared).
      std::unique_lock<std::mutex> lk(sh->mu, std::try_to_lock);
      if (lk.owns_lock()) sh->be.reset();
    }
    FailAllAsync(info.Env(), "model disposed");
    return info.Env().Undefined();
  }

  std::shared_ptr<Shared> sh_;
  ModelSpec spec_;
  std::string device_;
  int blockSize_ = 0;
};

// NativeModel constructors per env (worker threads load the addon again). Not env instance data: that slot
// is single per addon and other binding files may want it.
std::mutex gCtorMu;
std::unordered_map<napi_env, Napi::FunctionReference*> gCtors;

Napi::FunctionReference& modelCtor(napi_env env) {
  std::lock_guard<std::mutex> lk(gCtorMu);
  return *gCtors.at(env);
}

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelSpec spec = specFromJs(env, info[0]);
  std::string libPath;
  BackendOptions opts = optsFromJs(env, info[1], &libPath);
  std::unique_ptr<Backend> be = guarded(env, [&] {
    return opts.device == "cpu" ? createCpuBackend(spec, opts) : createCudaBackend(libPath, spec, opts);
  });
  Napi::Object obj = modelCtor(env).New({});
  Model::Unwrap(obj)->attach(std::move(be));
  return obj;
}

}  // namespace

void registerModel(Napi::Env env, Napi::Object exports) {
  auto* ref = new Napi::FunctionReference(Napi::Persistent(Model::Define(env)));
  napi_env key = env;
  {
    std::lock_guard<std::mutex> lk(gCtorMu);
    gCtors[key] = ref;
  }
  env.AddCleanupHook([key] {
    std::lock_guard<std::mutex> lk(gCtorMu);
    delete gCtors[key];
    gCtors.erase(key);
  });
  exports.Set("createModel", Napi::Function::New(env, CreateModel, "createModel"));
}

}  // namespace pds::binding
