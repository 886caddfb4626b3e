// ops: the CPU kernels on Float32Arrays, for unit tests against JS references. Argument checks only.
//   rmsnorm(x, w, rows, dim, eps)                         -> Float32Array [rows, dim]
//   rope(x, rows, heads, headDim, positions, rope)        -> Float32Array (rope: {theta, type?, factor?,
//                                                            lowFreqFactor?, highFreqFactor?, originalMaxPos?})
//   siluAndMul(gu, rows, I)                               -> Float32Array [rows, I]
//   matmul(x, M, K, w, N, dtype, kernel?)                 -> Float32Array [M, N]  (w f32 values cast to dtype;
//                                                            kernel 'auto' (default) | 'exact' | 'dpbf16'
//                                                            (x split hi + lo) | 'dpbf16-round' (x rounded))
//   castRound(x, dtype)                                   -> x rounded through dtype (f32 values)
//   embedding(ids, table, vocab, H)                       -> Float32Array [T, H]
//   kernelIsa()                                           -> 'avx512' | 'avx2' (the kernels in use)
//   matmulBench(M, K, N, dtype, iters, kernel?)           -> seconds per matmul call (kernel tuning)
//   bf16Dot()                                             -> true when bf16 matmuls use AVX512-BF16 (hasAvx512Bf16)
//   attention({q, kCache, vCache, kvDtype, numHeads, numKvHeads, headDim, blockSize, numBlocks,
//              queryStartLoc, contextLens, blockTables, maxBlocksPerSeq}) -> Float32Array [T, numHeads*headDim]
#include <chrono>
#include <string>
#include <vector>

#include "../cpu/dtype.h"
#include "../cpu/kernels.h"
#include "../cpu/matmul-isa.h"
#include "args.h"
#include "pds/sample-row.h"
#include "register.h"

namespace pds::binding {
namespace {

using cpu::defaultPool;

int dim(const Napi::Env& env, const Napi::Value& v, const char* what) {
  return static_cast<int>(intArg(env, v, what, 1, 1 << 28));
}

// matmul through the kernel named by `kernel` (undefined = 'auto': what the engine uses).
// 'exact': the f32-activation kernels; 'dpbf16': AVX512-BF16 (bf16 W on a CPU that has it, else a TypeError).
void matmulWith(const Napi::Env& env, const Napi::Value& kernel, const float* x, int M, int K, const void* w, DType dt,
                int N, float* y) {
  std::string k = kernel.IsUndefined() ? "auto" : kernel.ToString().Utf8Value();
  if (k == "auto") return cpu::matmul(defaultPool(), x, M, K, w, dt, N, y, N, false);
  if (k == "exact") return cpu::matmulExact(defaultPool(), x, M, K, w, dt, N, y, N, false);
  if (k == "dpbf16" || k == "dpbf16-round") {
    if (dt != DType::BF16 || !cpu::hasAvx512Bf16())
      throw Napi::TypeError::New(env, "matmul: 'dpbf16' needs bf16 weights and a CPU with AVX512-BF16");
    return cpu::matmulAvx512Bf16(defaultPool(), x, M, K, static_cast<const uint16_t*>(w), N, y, N, false,
                                 k == "dpbf16" ? cpu::Bf16Dot::Split : cpu::Bf16Dot::Round);
  }
  throw Napi::TypeError::New(env, "matmul: kernel must be 'auto', 'exact', 'dpbf16' or 'dpbf16-round'");
}

Napi::Value Rmsnorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int rows = dim(env, info[2], "rmsnorm: rows"), d = dim(env, info[3], "rmsnorm: dim");
  auto x = f32Arg(env, info[0], "rmsnorm: x", static_cast<size_t>(rows) * d);
  auto w = f32Arg(env, info[1], "rmsnorm: w", d);
  float eps = static_cast<float>(numberArg(env, info[4], "rmsnorm: eps"));
  std::vector<float> out(static_cast<size_t>(rows) * d);
  cpu::rmsnorm(x.Data(), d, w.Data(), out.data(), d, rows, d, eps);
  return newF32(env, out.data(), out.size());
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int rows = dim(env, info[1], "rope: rows"), heads = dim(env, info[2], "rope: heads"), hd = dim(env, info[3], "rope: headDim");
  if (hd % 2) throw Napi::RangeError::New(env, "rope: headDim must be even");
  auto x = f32Arg(env, info[0], "rope: x", static_cast<size_t>(rows) * heads * hd);
  auto pos = i32Arg(env, info[4], "rope: positions", rows);
  if (!info[5].IsObject()) throw Napi::TypeError::New(env, "rope: rope must be an object {theta, type, ...}");
  Napi::Object r = info[5].As<Napi::Object>();
  ModelSpec s;
  s.headDim = hd;
  s.ropeTheta = static_cast<float>(numberArg(env, r.Get("theta"), "rope.theta"));
  std::string type = r.Get("type").IsUndefined() ? "default" : stringArg(env, r.Get("type"), "rope.type");
  if (type == "llama3") {
    s.ropeType = RopeType::Llama3;
    s.ropeFactor = static_cast<float>(numberArg(env, r.Get("factor"), "rope.factor"));
    s.ropeLowFreqFactor = static_cast<float>(numberArg(env, r.Get("lowFreqFactor"), "rope.lowFreqFactor"));
    s.ropeHighFreqFactor = static_cast<float>(numberArg(env, r.Get("highFreqFactor"), "rope.highFreqFactor"));
    s.ropeOriginalMaxPos = static_cast<int>(intArg(env, r.Get("originalMaxPos"), "rope.originalMaxPos", 1, 1 << 30));
  } else if (type != "default") {
    throw Napi::TypeError::New(env, "rope.type must be 'default' or 'llama3'");
  }
  std::vector<float> inv(hd / 2);
  cpu::ropeInvFreq(s, inv.data());
  std::vector<float> out(x.Data(), x.Data() + static_cast<size_t>(rows) * heads * hd);
  cpu::rope(out.data(), heads * hd, rows, heads, hd, pos.Data(), inv.data());
  return newF32(env, out.data(), out.size());
}

Napi::Value SiluAndMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int rows = dim(env, info[1], "siluAndMul: rows"), I = dim(env, info[2], "siluAndMul: I");
  auto gu = f32Arg(env, info[0], "siluAndMul: gu", static_cast<size_t>(rows) * 2 * I);
  std::vector<float> out(static_cast<size_t>(rows) * I);
  cpu::siluMul(gu.Data(), rows, I, out.data());
  return newF32(env, out.data(), out.size());
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int M = dim(env, info[1], "matmul: M"), K = dim(env, info[2], "matmul: K"), N = dim(env, info[4], "matmul: N");
  auto x = f32Arg(env, info[0], "matmul: x", static_cast<size_t>(M) * K);
  auto w = f32Arg(env, info[3], "matmul: w", static_cast<size_t>(N) * K);
  DType dt = dtypeArg(env, info[5], "matmul: dtype");
  std::vector<char> wq(static_cast<size_t>(N) * K * dtypeSize(dt));
  cpu::fromF32(w.Data(), dt, wq.data(), static_cast<size_t>(N) * K);
  std::vector<float> out(static_cast<size_t>(M) * N);
  guarded(env, [&] {
    matmulWith(env, info[6], x.Data(), M, K, wq.data(), dt, N, out.data());
    return 0;
  });
  return newF32(env, out.data(), out.size());
}

Napi::Value CastRound(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto x = f32Arg(env, info[0], "castRound: x", 0);
  DType dt = dtypeArg(env, info[1], "castRound: dtype");
  size_t n = x.ElementLength();
  std::vector<char> q(n * dtypeSize(dt) + 1);
  std::vector<float> out(n);
  cpu::fromF32(x.Data(), dt, q.data(), n);
  cpu::toF32(q.data(), dt, out.data(), n);
  return newF32(env, out.data(), n);
}

Napi::Value Embedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = i32Arg(env, info[0], "embedding: ids", 0);
  int vocab = dim(env, info[2], "embedding: vocab"), H = dim(env, info[3], "embedding: H");
  auto table = f32Arg(env, info[1], "embedding: table", static_cast<size_t>(vocab) * H);
  std::vector<float> out(ids.ElementLength() * H);
  guarded(env, [&] {
    cpu::embedding(ids.Data(), static_cast<int>(ids.ElementLength()), table.Data(), DType::F32, vocab, H, out.data());
    return 0;
  });
  return newF32(env, out.data(), out.size());
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "attention: expects one options object");
  Napi::Object o = info[0].As<Napi::Object>();
  int nH = dim(env, o.Get("numHeads"), "attention: numHeads"), kvh = dim(env, o.Get("numKvHeads"), "attention: numKvHeads");
  int hd = dim(env, o.Get("headDim"), "attention: headDim"), bs = dim(env, o.Get("blockSize"), "attention: blockSize");
  int nb = dim(env, o.Get("numBlocks"), "attention: numBlocks"), mb = dim(env, o.Get("maxBlocksPerSeq"), "attention: maxBlocksPerSeq");
  if (nH % kvh) throw Napi::RangeError::New(env, "attention: numHeads must be a multiple of numKvHeads");
  DType dt = dtypeArg(env, o.Get("kvDtype"), "attention: kvDtype");
  auto qsl = i32Arg(env, o.Get("queryStartLoc"), "attention: queryStartLoc", 2);
  const int S = static_cast<int>(qsl.ElementLength()) - 1;
  auto ctx = i32Arg(env, o.Get("contextLens"), "attention: contextLens", S);
  auto bt = i32Arg(env, o.Get("blockTables"), "attention: blockTables", static_cast<size_t>(S) * mb);
  const int T = qsl.Data()[S];
  if (T < 0) throw Napi::RangeError::New(env, "attention: bad queryStartLoc");
  auto q = f32Arg(env, o.Get("q"), "attention: q", static_cast<size_t>(T) * nH * hd);
  const size_t cacheElems = static_cast<size_t>(nb) * bs * kvh * hd;
  auto kc = f32Arg(env, o.Get("kCache"), "attention: kCache", cacheElems);
  auto vc = f32Arg(env, o.Get("vCache"), "attention: vCache", cacheElems);
  std::vector<char> kq(cacheElems * dtypeSize(dt)), vq(cacheElems * dtypeSize(dt));
  cpu::fromF32(kc.Data(), dt, kq.data(), cacheElems);
  cpu::fromF32(vc.Data(), dt, vq.data(), cacheElems);
  cpu::KvLayer kv{kq.data(), vq.data(), dt, nb, bs, kvh, hd};
  cpu::AttnBatch ab{S, qsl.Data(), ctx.Data(), bt.Data(), mb};
  std::vector<float> out(static_cast<size_t>(T) * nH * hd);
  guarded(env, [&] {
    for (int s = 0; s <= S; s++)
      if (qsl.Data()[s] < 0 || qsl.Data()[s] > T || (s > 0 && qsl.Data()[s] < qsl.Data()[s - 1]))
        throw std::out_of_range("attention: queryStartLoc must be non-decreasing within [0, T]");
    for (int s = 0; s < S; s++)
      if ((ctx.Data()[s] + bs - 1) / bs > mb) throw std::out_of_range("attention: context exceeds the block table");
    cpu::pagedAttention(defaultPool(), q.Data(), nH * hd, nH, kv, ab, out.data(), nH * hd);
    return 0;
  });
  return newF32(env, out.data(), out.size());
}

// matmulBench(M, K, N, dtype, iters) -> seconds per call (random data, weights resident in memory).
Napi::Value MatmulBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int M = dim(env, info[0], "matmulBench: M"), K = dim(env, info[1], "matmulBench: K"), N = dim(env, info[2], "matmulBench: N");
  DType dt = dtypeArg(env, info[3], "matmulBench: dtype");
  int iters = static_cast<int>(intArg(env, info[4], "matmulBench: iters", 1, 100000));
  std::vector<char> w(static_cast<size_t>(N) * K * dtypeSize(dt));
  std::vector<float> x(static_cast<size_t>(M) * K), y(static_cast<size_t>(M) * N);
  cpu::fillRandom(defaultPool(), w.data(), dt, static_cast<size_t>(N) * K, 0.05f, 1, 0);
  cpu::fillRandom(defaultPool(), x.data(), DType::F32, x.size(), 1.f, 2, 0);
  matmulWith(env, info[5], x.data(), M, K, w.data(), dt, N, y.data());
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; i++) matmulWith(env, info[5], x.data(), M, K, w.data(), dt, N, y.data());
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Napi::Number::New(env, sec / iters);
}

// sampleRow(logits: Float32Array, { temperature, topP, minP, topK, u }) -> token id (pds/sample-row.h: the CPU
// backend's sampler; tests hold it to src/engine/sampler.ts).
Napi::Value SampleRowOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto logits = f32Arg(env, info[0], "sampleRow: logits", 1);
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "sampleRow: params must be an object");
  Napi::Object o = info[1].As<Napi::Object>();
  auto num = [&](const char* k) { return o.Get(k).ToNumber().DoubleValue(); };
  RowSampling p{static_cast<float>(num("temperature")), static_cast<float>(num("topP")), static_cast<float>(num("minP")),
                static_cast<float>(num("u")), static_cast<int32_t>(num("topK"))};
  std::vector<float> scratch;
  return Napi::Number::New(env, sampleRow(logits.Data(), static_cast<int>(logits.ElementLength()), p, scratch));
}

Napi::Value KernelIsa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cpu::hasAvx512() ? "avx512" : "avx2");
}

Napi::Value Bf16Dot(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), cpu::hasAvx512Bf16()); }

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("rmsnorm", Napi::Function::New(env, Rmsnorm, "rmsnorm"));
  ops.Set("rope", Napi::Function::New(env, Rope, "rope"));
  ops.Set("siluAndMul", Napi::Function::New(env, SiluAndMul, "siluAndMul"));
  ops.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  ops.Set("castRound", Napi::Function::New(env, CastRound, "castRound"));
  ops.Set("embedding", Napi::Function::New(env, Embedding, "embedding"));
  ops.Set("bf16Dot", Napi::Function::New(env, Bf16Dot, "bf16Dot"));
  ops.Set("kernelIsa", Napi::Function::New(env, KernelIsa, "kernelIsa"));
  ops.Set("matmulBench", Napi::Function::New(env, MatmulBench, "matmulBench"));
  ops.Set("attention", Napi::Function::New(env, Attention, "attention"));
  ops.Set("sampleRow", Napi::Function::New(env, SampleRowOp, "sampleRow"));
  exports.Set("ops", ops);
}

}  // namespace pds::binding
