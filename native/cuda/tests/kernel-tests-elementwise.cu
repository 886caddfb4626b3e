// Element-wise kernel tests: embedding, rmsnorm, qkv prep, SiLU-mul, convert / fill (declared in kernel-tests.h; run in order by runKernelTests, kernel-tests.cu).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../kernels.h"
#include "kernel-tests.h"

namespace pds::test::kernels {
using namespace pds::cuda;

void testEmbedding(DType t) {
  const int V = 50, H = 64;
  auto table = randomVec(rng, V * H, -1, 1, t);
  std::vector<int32_t> ids = {3, 0, 49, 17, 50, -1, 3};
  void* dt = toDevice(t, table);
  int32_t* di = devInts(ids);
  void* out = toDevice(t, std::vector<float>(ids.size() * H, 7.f));
  int* flag; TCHECK(cudaMalloc(&flag, 4)); TCHECK(cudaMemset(flag, 0, 4));
  launchEmbedding(t, t, di, (int)ids.size(), dt, V, H, out, flag, 0);
  sync();
  auto o = fromDevice(t, out, ids.size() * H);
  std::vector<double> ref(o.size());
  for (size_t r = 0; r < ids.size(); ++r)
    for (int i = 0; i < H; ++i) ref[r * H + i] = (ids[r] >= 0 && ids[r] < V) ? table[ids[r] * H + i] : 0.0;
  int f = 0; TCHECK(cudaMemcpy(&f, flag, 4, cudaMemcpyDeviceToHost));
  check(f == 1, "embedding/" + tag(t) + " (out-of-range ids -> zeros + flag)", relErr(o, ref), 0);
  TCHECK(cudaMemset(flag, 0, 4));
  launchEmbedding(t, t, di, 4, dt, V, H, out, flag, 0);
  sync();
  TCHECK(cudaMemcpy(&f, flag, 4, cudaMemcpyDeviceToHost));
  results().record(f == 0, "embedding/" + tag(t) + " (valid ids leave flag clear)", "");
  if (t != DType::F32) {  // f32 compute over a bf16/f16 table: exact widening
    void* o32 = toDevice(DType::F32, std::vector<float>(ids.size() * H, 7.f));
    launchEmbedding(t, DType::F32, di, (int)ids.size(), dt, V, H, o32, flag, 0);
    sync();
    check(true, "embedding/" + tag(t) + " -> f32 out", relErr(fromDevice(DType::F32, o32, ids.size() * H), ref), 0);
    cudaFree(o32);
  }
  cudaFree(dt); cudaFree(di); cudaFree(out); cudaFree(flag);
}

void testRmsNorm(DType t, int H, bool withAdd, bool withIdx) {
  const int rows = 5;
  const float eps = 1e-5f;
  auto x = randomVec(rng, rows * H, -2, 2, t), a = randomVec(rng, rows * H, -1, 1, t), w = randomVec(rng, H, 0.5, 1.5, t);
  std::vector<int32_t> idx = {4, 1, 2};
  const int outRows = withIdx ? (int)idx.size() : rows;
  void *dx = toDevice(t, x), *da = toDevice(t, a), *dw = toDevice(t, w);
  void* dout = toDevice(t, std::vector<float>(outRows * H, NAN));
  int32_t* di = devInts(idx);
  launchRmsNorm(t, dx, withAdd ? da : nullptr, dw, dout, withIdx ? di : nullptr, outRows, H, eps, 0);
  sync();
  auto o = fromDevice(t, dout, outRows * H);
  std::vector<double> ref(outRows * H);
  for (int r = 0; r < outRows; ++r) {
    const int src = withIdx ? idx[r] : r;
    std::vector<double> v(H);
    double ss = 0;
    for (int i = 0; i < H; ++i) {
      v[i] = withAdd ? roundTo(t, x[src * H + i] + a[src * H + i]) : x[src * H + i];
      ss += v[i] * v[i];
    }
    const double inv = 1.0 / std::sqrt(ss / H + eps);
    for (int i = 0; i < H; ++i) ref[r * H + i] = v[i] * inv * w[i];
  }
  const std::string name = "rmsnorm/" + tag(t) + " H=" + std::to_string(H) + (withAdd ? " +residual" : "") + (withIdx ? " rows" : "");
  check(true, name, relErr(o, ref), tolFor(t));
  cudaFree(dx); cudaFree(da); cudaFree(dw); cudaFree(dout); cudaFree(di);
}

void testQkvPrep(DType t, int D, int nH, int nKV, bool bias, bool norm) {
  const int T = 7, heads = nH + 2 * nKV, slotsTotal = 64 * 16;
  const float eps = 1e-6f;
  auto qkv = randomVec(rng, T * heads * D, -2, 2, t);
  auto b = randomVec(rng, heads * D, -0.5, 0.5, t);
  auto qw = randomVec(rng, D, 0.5, 1.5, t), kw = randomVec(rng, D, 0.5, 1.5, t);
  std::vector<float> inv(D / 2);
  for (int i = 0; i < D / 2; ++i) inv[i] = (float)(1.0 / std::pow(10000.0, 2.0 * i / D));
  std::vector<int32_t> pos(T), slots(T);
  std::uniform_int_distribution<int> up(0, 5000);
  std::vector<int32_t> perm(slotsTotal); std::iota(perm.begin(), perm.end(), 0); std::shuffle(perm.begin(), perm.end(), rng);
  for (int i = 0; i < T; ++i) { pos[i] = up(rng); slots[i] = perm[i]; }
  slots[T - 1] = -1;  // padding token: no cache write
  void *dq = toDevice(t, qkv), *db = toDevice(t, b), *dqw = toDevice(t, qw), *dkw = toDevice(t, kw);
  void* dinv = toDevice(DType::F32, inv);
  int32_t *dpos = devInts(pos), *dsl = devInts(slots);
  std::vector<float> poison((size_t)slotsTotal * nKV * D, 1234.f);
  void *kc = toDevice(t, poison), *vc = toDevice(t, poison);
  launchQkvPrep(t, dq, T, nH, nKV, D, bias ? db : nullptr, norm ? dqw : nullptr, norm ? dkw : nullptr, eps,
                (const float*)dinv, dpos, dsl, kc, vc, 0);
  sync();
  auto q = fromDevice(t, dq, qkv.size());
  auto k = fromDevice(t, kc, poison.size()), v = fromDevice(t, vc, poison.size());
  std::vector<float> got; std::vector<double> ref;
  bool untouched = true;
  for (int tk = 0; tk < T; ++tk)
    for (int h = 0; h < heads; ++h) {
      const int kind = h < nH ? 0 : h < nH + nKV ? 1 : 2;
      std::vector<double> x(D);
      for (int i = 0; i < D; ++i) {
        const float raw = qkv[((size_t)tk * heads + h) * D + i];
        x[i] = bias ? roundTo(t, raw + b[h * D + i]) : raw;
      }
      if (norm && kind < 2) {
        double ss = 0; for (double e : x) ss += e * e;
        const double r = 1.0 / std::sqrt(ss / D + eps);
        for (int i = 0; i < D; ++i) x[i] = x[i] * r * (kind == 0 ? qw[i] : kw[i]);
      }
      if (kind < 2) {
        std::vector<double> y(D);
        for (int i = 0; i < D / 2; ++i) {
          const double ang = (double)(float)((float)pos[tk] * inv[i]);
          y[i] = x[i] * std::cos(ang) - x[i + D / 2] * std::sin(ang);
          y[i + D / 2] = x[i + D / 2] * std::cos(ang) + x[i] * std::sin(ang);
        }
        x = y;
      }
      for (int i = 0; i < D; ++i) {
        if (kind == 0) got.push_back(q[((size_t)tk * heads + h) * D + i]);
        else if (slots[tk] >= 0) {
          const int kvh = h - nH - (kind == 2 ? nKV : 0);
          got.push_back((kind == 1 ? k : v)[((size_t)slots[tk] * nKV + kvh) * D + i]);
        } else continue;
        ref.push_back(x[i]);
      }
    }
  for (int s = 0; s < slotsTotal; ++s) {
    if (std::find(slots.begin(), slots.end(), s) != slots.end()) continue;
    if (k[(size_t)s * nKV * D] != roundTo(t, 1234.f) || v[(size_t)s * nKV * D] != roundTo(t, 1234.f)) untouched = false;
  }
  char nm[128];
  std::snprintf(nm, sizeof nm, "qkv_prep/%s D=%d heads=%d/%d%s%s (rope, kv write)", tag(t).c_str(), D, nH, nKV,
                bias ? " +bias" : "", norm ? " +qk_norm" : "");
  // rope angles up to ~5000 rad: f32 sin/cos of the same f32 angle agree to ~1e-6 relative
  check(untouched, nm, relErr(got, ref), std::max(tolFor(t), 2e-5));
  for (void* p : {dq, db, dqw, dkw, dinv, (void*)dpos, (void*)dsl, kc, vc}) cudaFree(p);
}

void testSiluMul(DType t, int I) {
  const int T = 3;
  auto gu = randomVec(rng, T * 2 * I, -4, 4, t);
  void* d = toDevice(t, gu);
  void* o = toDevice(t, std::vector<float>(T * I, NAN));
  launchSiluMul(t, d, o, T, I, 0);
  sync();
  auto got = fromDevice(t, o, T * I);
  std::vector<double> ref(T * I);
  for (int r = 0; r < T; ++r)
    for (int i = 0; i < I; ++i) {
      const double g = gu[r * 2 * I + i], u = gu[r * 2 * I + I + i];
      ref[r * I + i] = g / (1 + std::exp(-g)) * u;
    }
  check(true, "silu_mul/" + tag(t) + " I=" + std::to_string(I), relErr(got, ref), std::max(tolFor(t), 1e-6));
  cudaFree(d); cudaFree(o);
}

void testConvertAndFill() {
  auto x = randomVec(rng, 1000, -3, 3, DType::F32);
  void* d = toDevice(DType::F32, x);
  void* o; TCHECK(cudaMalloc(&o, 2000));
  launchConvert(DType::BF16, o, DType::F32, d, 1000, 0);
  sync();
  auto got = fromDevice(DType::BF16, o, 1000);
  bool ok = true;
  for (int i = 0; i < 1000; ++i) ok = ok && got[i] == roundTo(DType::BF16, x[i]);
  results().record(ok, "convert f32->bf16 (round to nearest even)", "exact");
  launchFillRandom(DType::F32, d, 1000, 42, 0.5f, 1.f, 0);
  sync();
  auto a = fromDevice(DType::F32, d, 1000);
  launchFillRandom(DType::F32, d, 1000, 42, 0.5f, 1.f, 0);
  sync();
  auto b = fromDevice(DType::F32, d, 1000);
  double mn = 9, mx = -9, mean = 0;
  for (float e : a) { mn = std::min<double>(mn, e); mx = std::max<double>(mx, e); mean += e / 1000; }
  results().record(a == b && mn >= 0.5 && mx < 1.5 && std::fabs(mean - 1) < 0.05, "fill_random (deterministic, range)", "");
  cudaFree(d); cudaFree(o);
}

}  // namespace pds::test::kernels
