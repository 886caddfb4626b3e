// Host implementation of RowSampling (pds/types.h): the CPU backend's sampler and the reference the CUDA
// sampling kernel is tested against. Sums in double, as the JS sampler (src/engine/sampler.ts).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "pds/types.h"

namespace pds {

inline int32_t argmaxRow(const float* row, int V) {
  int32_t best = 0;
  float bv = row[0];
  for (int i = 1; i < V; ++i)
    if (row[i] > bv) { bv = row[i]; best = i; }
  return best;
}

// scratch: reused between calls (sorted copies for top-k / top-p).
inline int32_t sampleRow(const float* row, int V, const RowSampling& p, std::vector<float>& scratch) {
  if (!(p.temperature >= 1e-5f)) return argmaxRow(row, V);
  const double invT = 1.0 / p.temperature;
  double m = -INFINITY;
  for (int i = 0; i < V; ++i) if (row[i] > m) m = row[i];
  if (!std::isfinite(m)) return argmaxRow(row, V);
  double thr = -INFINITY;
  auto finite = [](float v) { return !std::isnan(v); };
  if (p.topK > 0 && p.topK < V) {
    scratch.clear();
    for (int i = 0; i < V; ++i) if (finite(row[i])) scratch.push_back(row[i]);
    if ((int)scratch.size() >= p.topK) {
      std::nth_element(scratch.begin(), scratch.begin() + (p.topK - 1), scratch.end(), std::greater<float>());
      thr = scratch[p.topK - 1];
    }
  }
  if (p.minP > 0.f) thr = std::max(thr, m + std::log((double)p.minP) * p.temperature);
  auto w = [&](float v) { return std::exp((v - m) * invT); };
  double total = 0;
  for (int i = 0; i < V; ++i) if (row[i] >= thr) total += w(row[i]);
  if (p.topP < 1.f) {
    scratch.clear();
    for (int i = 0; i < V; ++i) if (row[i] >= thr) scratch.push_back(row[i]);
    std::sort(scratch.begin(), scratch.end(), std::greater<float>());
    const double target = (double)p.topP * total;
    double acc = 0;
    for (float v : scratch) {
      acc += w(v);
      if (acc >= target) { thr = v; break; }
    }
    total = 0;
    for (int i = 0; i < V; ++i) if (row[i] >= thr) total += w(row[i]);
  }
  double r = (double)p.u * total;
  int32_t last = -1;
  for (int i = 0; i < V; ++i) {
    if (!(row[i] >= thr)) continue;
    last = i;
    r -= w(row[i]);
    if (r < 0) return i;
  }
  return last >= 0 ? last : argmaxRow(row, V);
}

}  // namespace pds
