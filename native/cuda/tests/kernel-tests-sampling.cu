// Sampling kernel tests: launchSample against pds::sampleRow, argmax (declared in kernel-tests.h; run in order by runKernelTests, kernel-tests.cu).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../kernels.h"
#include "pds/sample-row.h"
#include "pds/token-mask.h"
#include "kernel-tests.h"

namespace pds::test::kernels {
using namespace pds::cuda;

// launchSample against pds::sampleRow (the CPU backend's sampler, itself held to src/engine/sampler.ts) on the
// same rows and uniform draws: greedy, temperature, top-k, top-p, min-p, ties at the top; tokens must be equal.
void testSample() {
  const int V = 151936;
  const RowSampling ps[] = {
      {0.f, 1.f, 0.f, 0.f, 0},      {1.f, 1.f, 0.f, 0.f, 0},      {0.5f, 1.f, 0.f, 0.f, 0},
      {1.25f, 1.f, 0.f, 0.f, 5},    {0.75f, 1.f, 0.f, 0.f, 50},   {1.f, 0.9f, 0.f, 0.f, 0},
      {0.5f, 0.5f, 0.f, 0.f, 0},    {1.f, 1.f, 0.1f, 0.f, 0},     {0.75f, 0.8f, 0.05f, 0.f, 40},
      {1.f, 1.f, 0.f, 0.f, 1},
  };
  const int P = sizeof ps / sizeof ps[0], rowsPerCase = 6, R = P * rowsPerCase;
  std::vector<float> logits((size_t)R * V);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::uniform_real_distribution<float> ud(0.f, 1.f);
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < V; ++i) logits[(size_t)r * V + i] = nd(rng);
    if (r % 3 == 0) for (int i = 0; i < 20; ++i) logits[(size_t)r * V + (i * 7919) % V] = 9.f;  // ties at the top
  }
  std::vector<RowSampling> params(R);
  for (int r = 0; r < R; ++r) { params[r] = ps[r % P]; params[r].u = std::min(ud(rng), 0.99999994f); }
  float* dl; RowSampling* dp; int32_t* dout;
  TCHECK(cudaMalloc(&dl, logits.size() * 4)); TCHECK(cudaMalloc(&dp, R * sizeof(RowSampling))); TCHECK(cudaMalloc(&dout, R * 4));
  TCHECK(cudaMemcpy(dl, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice));
  TCHECK(cudaMemcpy(dp, params.data(), R * sizeof(RowSampling), cudaMemcpyHostToDevice));
  launchSample(dl, R, V, dp, dout, 0);
  sync();
  std::vector<int32_t> got(R);
  TCHECK(cudaMemcpy(got.data(), dout, R * 4, cudaMemcpyDeviceToHost));
  std::vector<float> scratch;
  int bad = 0; std::string first;
  for (int r = 0; r < R; ++r) {
    const int32_t want = sampleRow(logits.data() + (size_t)r * V, V, params[r], scratch);
    if (got[r] != want && bad++ == 0) first = ", first: row " + std::to_string(r) + " got " + std::to_string(got[r]) + " want " + std::to_string(want);
  }
  results().record(bad == 0, "sample (greedy/temperature/top-k/top-p/min-p) vs host sampleRow, " + std::to_string(R) + " rows of 151936",
                   "(" + std::to_string(bad) + " differ" + first + ")");
  cudaFree(dl); cudaFree(dp); cudaFree(dout);
}

// launchTokenMask against pds::applyTokenMask: masked rows (a subset, as the engine sends them) equal the
// host-masked rows bit for bit, unmasked rows untouched; then the masked rows' device token choice equals
// sampleRow over the host-masked rows (greedy and temperature), and the chosen ids are allowed.
// Masks: random bits, all-allowed and all-rejected words, a row with a single allowed id.
void testTokenMask(int V) {
  const int R = 7;
  const std::vector<int32_t> rows = {0, 2, 3, 6};
  const int M = (int)rows.size(), words = tokenMaskWords(V);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::uniform_int_distribution<uint32_t> ub;
  std::uniform_real_distribution<float> ud(0.f, 1.f);
  std::vector<float> logits((size_t)R * V);
  for (auto& v : logits) v = nd(rng);
  std::vector<int32_t> masks((size_t)M * words);
  for (int m = 0; m < M; ++m)
    for (int w = 0; w < words; ++w) {
      const uint32_t k = ub(rng) % 8;
      masks[(size_t)m * words + w] = (int32_t)(k == 0 ? 0xffffffffu : k == 1 ? 0u : ub(rng) & ub(rng));
    }
  std::fill(masks.begin() + 3 * words, masks.end(), 0);  // row 6: one allowed id
  masks[(size_t)3 * words + (V - 2) / 32] = (int32_t)(1u << ((V - 2) % 32));
  std::vector<RowSampling> params(R);
  for (int r = 0; r < R; ++r) params[r] = r % 2 ? RowSampling{1.f, 0.9f, 0.f, std::min(ud(rng), 0.99999994f), 40} : RowSampling{};
  float* dl; RowSampling* dp; int32_t* dout;
  TCHECK(cudaMalloc(&dl, logits.size() * 4)); TCHECK(cudaMalloc(&dp, R * sizeof(RowSampling))); TCHECK(cudaMalloc(&dout, R * 4));
  TCHECK(cudaMemcpy(dl, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice));
  TCHECK(cudaMemcpy(dp, params.data(), R * sizeof(RowSampling), cudaMemcpyHostToDevice));
  int32_t* drows = devInts(rows);
  int32_t* dmasks = devInts(masks);
  launchTokenMask(dl, V, drows, M, dmasks, 0);
  launchSample(dl, R, V, dp, dout, 0);
  sync();
  std::vector<float> got(logits.size());
  std::vector<int32_t> tok(R);
  TCHECK(cudaMemcpy(got.data(), dl, got.size() * 4, cudaMemcpyDeviceToHost));
  TCHECK(cudaMemcpy(tok.data(), dout, R * 4, cudaMemcpyDeviceToHost));
  std::vector<float> want = logits;
  for (int m = 0; m < M; ++m) applyTokenMask(want.data() + (size_t)rows[m] * V, V, masks.data() + (size_t)m * words);
  size_t diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff += std::memcmp(&got[i], &want[i], 4) != 0;
  std::vector<float> scratch;
  int badTok = 0, notAllowed = 0;
  for (int m = 0; m < M; ++m) {
    const int r = rows[m];
    const int32_t w = sampleRow(want.data() + (size_t)r * V, V, params[r], scratch);
    badTok += tok[r] != w;
    notAllowed += !((((uint32_t)masks[(size_t)m * words + tok[r] / 32]) >> (tok[r] % 32)) & 1u);
  }
  const bool single = tok[6] == V - 2;
  results().record(diff == 0 && badTok == 0 && notAllowed == 0 && single,
                   "token mask V=" + std::to_string(V) + " (4 of 7 rows) vs host applyTokenMask, then sample",
                   "(" + std::to_string(diff) + " logits differ, " + std::to_string(badTok) + " tokens differ, " +
                       std::to_string(notAllowed) + " not allowed, single-id row " + (single ? "ok" : "wrong") + ")");
  cudaFree(dl); cudaFree(dp); cudaFree(dout); cudaFree(drows); cudaFree(dmasks);
}

void testArgmax() {
  const int rows = 3, V = 151936;
  auto l = randomVec(rng, (size_t)rows * V, -5, 5, DType::F32);
  l[5] = 9; l[77] = 9;                   // tie: lowest index wins
  l[V + 151935] = 20;                    // last element
  l[2 * V + 1000] = 7; l[2 * V + 9] = 7.5f;
  void* d = toDevice(DType::F32, l);
  int32_t* o; TCHECK(cudaMalloc(&o, rows * 4));
  launchArgmax((const float*)d, rows, V, o, 0);
  sync();
  int32_t h[3]; TCHECK(cudaMemcpy(h, o, 12, cudaMemcpyDeviceToHost));
  results().record(h[0] == 5 && h[1] == 151935 && h[2] == 9, "argmax (ties -> lowest index)",
                   std::to_string(h[0]) + "," + std::to_string(h[1]) + "," + std::to_string(h[2]));
  cudaFree(d); cudaFree(o);
}

}  // namespace pds::test::kernels
