// forward-args.h: batch / sampling argument checks and the forward's JS result.
#include "forward-args.h"

#include <algorithm>

#include "args.h"

namespace pds::binding {

std::shared_ptr<ForwardInput> forwardInputFromJs(const Napi::CallbackInfo& info, bool sample, int vocab) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "forward: batch must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto tok = i32Arg(env, o.Get("tokenIds"), "batch.tokenIds", 1);
  const size_t T = tok.ElementLength();
  auto pos = i32Arg(env, o.Get("positions"), "batch.positions", T);
  auto slot = i32Arg(env, o.Get("slotMapping"), "batch.slotMapping", T);
  auto qsl = i32Arg(env, o.Get("queryStartLoc"), "batch.queryStartLoc", 2);
  const size_t S = qsl.ElementLength() - 1;
  auto ctx = i32Arg(env, o.Get("contextLens"), "batch.contextLens", S);
  const int mb = static_cast<int>(intArg(env, o.Get("maxBlocksPerSeq"), "batch.maxBlocksPerSeq", 1, 1 << 24));
  auto bt = i32Arg(env, o.Get("blockTables"), "batch.blockTables", S * mb);
  auto li = i32Arg(env, o.Get("logitsIndices"), "batch.logitsIndices", 0);
  if (pos.ElementLength() != T || slot.ElementLength() != T)
    throw Napi::RangeError::New(env, "forward: tokenIds, positions and slotMapping must have the same length");
  if (ctx.ElementLength() != S) throw Napi::RangeError::New(env, "forward: contextLens must have queryStartLoc.length - 1 entries");
  const size_t R = li.ElementLength();
  auto in = std::make_shared<ForwardInput>();
  in->tokenIds = i32Vec(tok);
  in->positions = i32Vec(pos);
  in->slotMapping = i32Vec(slot);
  in->queryStartLoc = i32Vec(qsl);
  in->contextLens = i32Vec(ctx);
  in->blockTables = i32Vec(bt);
  in->logitsIndices = i32Vec(li);
  in->maxBlocksPerSeq = mb;
  in->sample = sample;
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
    // optional grammar masks: maskRows [M] ascending rows of [0, R), masks [M * ceil(vocab / 32)]
    Napi::Value mr = so.Get("maskRows");
    if (!mr.IsUndefined() && !mr.IsNull()) {
      auto rows = i32Arg(env, mr, "sampling.maskRows", 0);
      const size_t M = rows.ElementLength(), words = (static_cast<size_t>(vocab) + 31) / 32;
      auto bits = i32Arg(env, so.Get("masks"), "sampling.masks", M * words);
      if (bits.ElementLength() != M * words)
        throw Napi::RangeError::New(env, "forwardSample: sampling.masks must have maskRows.length * " + std::to_string(words) + " words");
      for (size_t m = 0; m < M; ++m)
        if (rows[m] < 0 || static_cast<size_t>(rows[m]) >= R || (m > 0 && rows[m] <= rows[m - 1]))
          throw Napi::RangeError::New(env, "forwardSample: sampling.maskRows must be ascending rows of [0, logitsIndices.length)");
      in->maskRows = i32Vec(rows);
      in->tokenMasks = i32Vec(bits);
    }
    in->wantLogits = info[2].ToBoolean().Value();
  }
  return in;
}

float* fillBatch(const ForwardInput& in, ForwardOutput& out, int vocab, BatchDesc& d) {
  d.numTokens = static_cast<int>(in.tokenIds.size());
  d.numSeqs = static_cast<int>(in.contextLens.size());
  d.tokenIds = in.tokenIds.data();
  d.positions = in.positions.data();
  d.slotMapping = in.slotMapping.data();
  d.queryStartLoc = in.queryStartLoc.data();
  d.contextLens = in.contextLens.data();
  d.blockTables = in.blockTables.data();
  d.maxBlocksPerSeq = in.maxBlocksPerSeq;
  d.numLogits = static_cast<int>(in.logitsIndices.size());
  d.logitsIndices = in.logitsIndices.data();
  if (!in.sampling.empty()) {
    out.tokens.resize(in.sampling.size());
    d.sampling = in.sampling.data();
    d.sampledTokens = out.tokens.data();
    d.numMaskedRows = static_cast<int>(in.maskRows.size());
    d.maskRows = in.maskRows.empty() ? nullptr : in.maskRows.data();
    d.tokenMasks = in.tokenMasks.empty() ? nullptr : in.tokenMasks.data();
  }
  if (in.wantLogits && !out.logits) {
    out.n = static_cast<size_t>(d.numLogits) * vocab;
    if (out.n) out.logits = new float[out.n];
  }
  return out.logits;
}

Napi::Value forwardResult(Napi::Env env, const ForwardInput& in, ForwardOutput& out) {
  Napi::Value logits = env.Null();
  if (in.wantLogits) {
    if (!out.n) {
      logits = Napi::Float32Array::New(env, 0);
    } else {
      float* data = out.logits;
      const size_t n = out.n;
      out.logits = nullptr;  // owned by the ArrayBuffer from here
      auto ab = Napi::ArrayBuffer::New(env, data, n * 4, [](Napi::Env, void* p) { delete[] static_cast<float*>(p); });
      logits = Napi::Float32Array::New(env, n, ab, 0);
    }
  }
  if (!in.sample) return logits;
  Napi::Object r = Napi::Object::New(env);
  auto tokens = Napi::Int32Array::New(env, out.tokens.size());
  std::copy(out.tokens.begin(), out.tokens.end(), tokens.Data());
  r.Set("tokens", tokens);
  r.Set("logits", logits);
  return r;
}

}  // namespace pds::binding
