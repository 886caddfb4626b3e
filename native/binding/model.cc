// createModel(spec, opts) -> NativeModel (src/native/binding.ts). A thin wrapper over pds::Backend: argument
// checks and handles, no math. Split by concern:
//   model.cc          the NativeModel class: argument checks, synchronous calls, worker jobs (KV transfer)
//   model-job.h       what the model shares with work in flight (ModelShared) and the worker job (ModelJob)
//   forward-args.*    forward / forwardSample batch parsing and the JS result
//   forward-queue.*   the asynchronous forward path (Backend::asyncForward: cuda): JS-thread queue + poll
//   tensor-file.*     reading a tensor's bytes from a checkpoint file (loadTensor)
//   js-error.h        the one C++ -> JS error mapping
// The backend is shared with in-flight work, so dispose() during a forward frees memory only when that
// forward finishes.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "args.h"
#include "forward-args.h"
#include "forward-queue.h"
#include "model-job.h"
#include "model-spec.h"
#include "pds/backend.h"
#include "register.h"
#include "tensor-file.h"
#include "kv-host.h"

namespace pds::binding {
namespace {

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
  explicit Model(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Model>(info), queue_([this](bool busy) { busy ? Ref() : Unref(); }) {}
  void attach(std::unique_ptr<Backend> be) {
    sh_ = std::make_shared<ModelShared>();
    sh_->be = std::move(be);
    queue_.attach(sh_);
    spec_ = sh_->be->spec();
    device_ = sh_->be->name();
  }

 private:
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
    std::unique_ptr<char[]> buf = guarded(env, [&] { return readTensorBytes(name, path, offset, nbytes); });
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
      std::shared_ptr<ForwardInput> in = forwardInputFromJs(info, sample, spec_.vocabSize);
      auto out = std::make_shared<ForwardOutput>();
      const int vocab = spec_.vocabSize;
      auto fill = [in, out, vocab](BatchDesc& d) -> float* { return fillBatch(*in, *out, vocab, d); };
      auto make = [in, out](Napi::Env env) -> Napi::Value { return forwardResult(env, *in, *out); };
      if (sh_->be->asyncForward()) return queue_.push(env, fill, make);
      // PDSERVE_TRACE_FORWARD=1: every 20th call prints where its wall time went (JS call -> worker start ->
      // backend done -> promise settled), to tell binding overhead from device time.
      static const bool trace = [] { const char* e = std::getenv("PDSERVE_TRACE_FORWARD"); return e && *e == '1'; }();
      using Clock = std::chrono::steady_clock;
      auto times = std::make_shared<std::array<Clock::time_point, 3>>();
      if (trace) (*times)[0] = Clock::now();
      auto sh = sh_;
      auto job = new ModelJob(
          env, sh,
          [sh, out, times, fill] {
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
      return rejectedPromise(env, e);
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
      auto job = new ModelJob(
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
      return rejectedPromise(env, e);
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
      auto job = new ModelJob(
          env, sh, [sh, sv, dv, pi] { sh->be->kvCopyFromPeer(pi, sv->data(), dv->data(), static_cast<int>(sv->size())); }, nullptr);
      Napi::Promise p = job->promise();
      job->Queue();
      return p;
    } catch (const Napi::Error& e) {
      return rejectedPromise(env, e);
    }
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (sh_) {
      auto sh = std::move(sh_);
      sh->disposed = true;
      // Free now unless a job is running; otherwise the last job to finish frees it (~ModelShared).
      std::unique_lock<std::mutex> lk(sh->mu, std::try_to_lock);
      if (lk.owns_lock()) sh->be.reset();
    }
    queue_.failAll(info.Env(), "model disposed");
    return info.Env().Undefined();
  }

  std::shared_ptr<ModelShared> sh_;
  ForwardQueue queue_;  // asynchronous forwards (Backend::asyncForward)
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
