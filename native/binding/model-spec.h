// JS NativeModelSpec / BackendOptions objects -> pds::ModelSpec / pds::BackendOptions (with checks).
#pragma once
#include "args.h"
#include "pds/backend.h"

namespace pds::binding {

inline ModelSpec specFromJs(const Napi::Env& env, const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "createModel: spec must be an object");
  Napi::Object o = v.As<Napi::Object>();
  ModelSpec s;
  auto i = [&](const char* k, int64_t lo, int64_t hi) {
    return static_cast<int>(intArg(env, o.Get(k), std::string("spec.") + k, lo, hi));
  };
  auto f = [&](const char* k, float def) {
    Napi::Value x = o.Get(k);
    if (x.IsUndefined() || x.IsNull()) return def;
    return static_cast<float>(numberArg(env, x, std::string("spec.") + k));
  };
  auto b = [&](const char* k) {
    Napi::Value x = o.Get(k);
    if (!x.IsBoolean()) throw Napi::TypeError::New(env, std::string("spec.") + k + " must be a boolean");
    return x.As<Napi::Boolean>().Value();
  };
  s.numLayers = i("numLayers", 1, 4096);
  s.hiddenSize = i("hiddenSize", 1, 1 << 20);
  s.intermediateSize = i("intermediateSize", 1, 1 << 22);
  s.numHeads = i("numHeads", 1, 4096);
  s.numKvHeads = i("numKvHeads", 1, 4096);
  s.headDim = i("headDim", 2, 256);
  s.vocabSize = i("vocabSize", 1, 1 << 24);
  s.rmsNormEps = f("rmsNormEps", 1e-6f);
  s.ropeTheta = f("ropeTheta", 10000.f);
  std::string rt = stringArg(env, o.Get("ropeType"), "spec.ropeType");
  if (rt == "default")
    s.ropeType = RopeType::Default;
  else if (rt == "llama3")
    s.ropeType = RopeType::Llama3;
  else
    throw Napi::TypeError::New(env, "spec.ropeType must be 'default' or 'llama3', got '" + rt + "'");
  s.ropeFactor = f("ropeFactor", 1.f);
  s.ropeLowFreqFactor = f("ropeLowFreqFactor", 1.f);
  s.ropeHighFreqFactor = f("ropeHighFreqFactor", 4.f);
  Napi::Value omp = o.Get("ropeOriginalMaxPos");
  if (!omp.IsUndefined() && !omp.IsNull())
    s.ropeOriginalMaxPos = static_cast<int>(intArg(env, omp, "spec.ropeOriginalMaxPos", 1, 1 << 30));
  s.tieWordEmbeddings = b("tieWordEmbeddings");
  s.qkvBias = b("qkvBias");
  s.qkNorm = b("qkNorm");
  s.weightDtype = dtypeArg(env, o.Get("weightDtype"), "spec.weightDtype");
  Napi::Value rfd = o.Get("ropeFreqDtype");
  if (!rfd.IsUndefined() && !rfd.IsNull()) s.ropeFreqDtype = dtypeArg(env, rfd, "spec.ropeFreqDtype");
  if (s.numHeads % s.numKvHeads) throw Napi::RangeError::New(env, "spec.numHeads must be a multiple of spec.numKvHeads");
  if (s.headDim % 2) throw Napi::RangeError::New(env, "spec.headDim must be even");
  return s;
}

// Also returns the CUDA library path (opts.cudaLibPath) through libPath.
inline BackendOptions optsFromJs(const Napi::Env& env, const Napi::Value& v, std::string* libPath) {
  BackendOptions bo;
  if (v.IsUndefined()) return bo;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "createModel: opts must be an object");
  Napi::Object o = v.As<Napi::Object>();
  bo.device = stringArg(env, o.Get("device"), "opts.device");
  if (bo.device.rfind("cuda", 0) == 0) {
    if (bo.device.size() > 4) {
      if (bo.device[4] != ':' || bo.device.size() == 5 ||
          bo.device.find_first_not_of("0123456789", 5) != std::string::npos)
        throw Napi::TypeError::New(env, "opts.device must be 'cpu', 'cuda' or 'cuda:N', got '" + bo.device + "'");
      bo.deviceIndex = std::stoi(bo.device.substr(5));
    }
  } else if (bo.device != "cpu") {
    throw Napi::TypeError::New(env, "opts.device must be 'cpu', 'cuda' or 'cuda:N', got '" + bo.device + "'");
  }
  Napi::Value t = o.Get("threads");
  if (!t.IsUndefined() && !t.IsNull()) bo.threads = static_cast<int>(intArg(env, t, "opts.threads", 0, 1024));
  Napi::Value lp = o.Get("cudaLibPath");
  if (!lp.IsUndefined() && !lp.IsNull()) *libPath = stringArg(env, lp, "opts.cudaLibPath");
  return bo;
}

}  // namespace pds::binding
