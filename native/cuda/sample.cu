// Token choice per logits row on the device (RowSampling in pds/types.h; host twin pds/sample-row.h):
// greedy argmax, or temperature sampling with top-k / min-p / top-p thresholds and the caller's uniform u.
// One block of 1024 threads per row. Thresholds are exact values of the row, found by radix selection over
// order-preserving 32-bit keys (4 passes of 8 bits): top-k counts elements, top-p sums weights (double).
#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint32_t orderKey(float f) {  // a < b  <=>  orderKey(a) < orderKey(b) (non-NaN)
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float keyValue(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

template <typename T, typename Op> __device__ T blockReduce(T v, Op op, T* red) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = red[0];
  for (int w = 1; w < kThreads / 32; ++w) r = op(r, red[w]);
  return r;
}

__global__ void __launch_bounds__(kThreads) sampleKernel(const float* logits, int V, const RowSampling* params,
                                                         int32_t* out) {
  __shared__ double redD[32];
  __shared__ float redF[32];
  __shared__ int redI[32];
  __shared__ unsigned cnt[256];
  __shared__ double wsum[256];
  __shared__ double scan[kThreads];
  const float* row = logits + (size_t)blockIdx.x * V;
  const RowSampling p = params[blockIdx.x];
  const int tid = threadIdx.x;

  // max and argmax (lowest index among maxima; NaN never wins)
  float best = -INFINITY; int bi = 0x7fffffff;
  for (int i = tid; i < V; i += kThreads) { const float v = row[i]; if (v > best) { best = v; bi = i; } }
  const float m = blockReduce(best, [](float a, float b) { return fmaxf(a, b); }, redF);
  const int arg = blockReduce(best == m ? bi : 0x7fffffff, [](int a, int b) { return min(a, b); }, redI);
  if (!(p.temperature >= 1e-5f) || !isfinite(m)) {
    if (tid == 0) out[blockIdx.x] = arg == 0x7fffffff ? 0 : arg;
    return;
  }
  const double invT = 1.0 / p.temperature, md = m;
  double thr = -INFINITY;

  if (p.topK > 0 && p.topK < V) {  // the topK-th largest value
    uint32_t prefix = 0, mask = 0;
    unsigned k = p.topK, found = 1;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int b = tid; b < 256; b += kThreads) cnt[b] = 0;
      __syncthreads();
      for (int i = tid; i < V; i += kThreads) {
        const float v = row[i];
        if (isnan(v)) continue;
        const uint32_t key = orderKey(v);
        if ((key & mask) == prefix) atomicAdd(&cnt[(key >> shift) & 0xff], 1u);
      }
      __syncthreads();
      if (tid == 0) {
        unsigned cum = 0; int b = 255;
        for (; b >= 0; --b) { if (cum + cnt[b] >= k) break; cum += cnt[b]; }
        if (b < 0) { found = 0; b = 0; }
        redI[0] = b; redI[1] = (int)(k - cum); redI[2] = (int)found;
      }
      __syncthreads();
      prefix |= (uint32_t)redI[0] << shift; mask |= 0xffu << shift; k = (unsigned)redI[1]; found = (unsigned)redI[2];
      __syncthreads();
    }
    if (found) thr = keyValue(prefix);
  }
  if (p.minP > 0.f) thr = fmax(thr, md + log((double)p.minP) * p.temperature);

  auto weightSum = [&](double t) {
    double s = 0;
    for (int i = tid; i < V; i += kThreads) { const float v = row[i]; if (v >= t) s += exp((v - md) * invT); }
    return blockReduce(s, [](double a, double b) { return a + b; }, redD);
  };
  double total = weightSum(thr);

  if (p.topP < 1.f) {  // the largest value v with sum of weights over x >= v reaching topP * total
    const double target = (double)p.topP * total;
    uint32_t prefix = 0, mask = 0;
    double above = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int b = tid; b < 256; b += kThreads) { cnt[b] = 0; wsum[b] = 0; }
      __syncthreads();
      for (int i = tid; i < V; i += kThreads) {
        const float v = row[i];
        if (!(v >= thr)) continue;
        const uint32_t key = orderKey(v);
        if ((key & mask) != prefix) continue;
        const int b = (key >> shift) & 0xff;
        atomicAdd(&cnt[b], 1u);
        atomicAdd(&wsum[b], exp((v - md) * invT));
      }
      __syncthreads();
      if (tid == 0) {
        double acc = above; int b = 255, lowest = -1;
        for (; b >= 0; --b) {
          if (!cnt[b]) continue;
          lowest = b;
          if (acc + wsum[b] >= target) break;
          acc += wsum[b];
        }
        if (b < 0) { b = lowest < 0 ? 0 : lowest; acc -= lowest < 0 ? 0 : wsum[lowest]; }  // rounding: the smallest bin
        redI[0] = b; redD[0] = acc;
      }
      __syncthreads();
      prefix |= (uint32_t)redI[0] << shift; mask |= 0xffu << shift; above = redD[0];
      __syncthreads();
    }
    thr = fmax(thr, (double)keyValue(prefix));
    total = weightSum(thr);
  }

  // first index whose running weight sum (index order) exceeds u * total: contiguous chunks per thread
  const double r = (double)p.u * total;
  const int chunk = (V + kThreads - 1) / kThreads;
  const int i0 = min(V, tid * chunk), i1 = min(V, i0 + chunk);
  double s = 0; int lastKept = -1;
  for (int i = i0; i < i1; ++i) { const float v = row[i]; if (v >= thr) { s += exp((v - md) * invT); lastKept = i; } }
  scan[tid] = s;
  __syncthreads();
  for (int o = 1; o < kThreads; o <<= 1) {  // inclusive scan (Hillis-Steele)
    const double add = tid >= o ? scan[tid - o] : 0.0;
    __syncthreads();
    scan[tid] += add;
    __syncthreads();
  }
  const double before = scan[tid] - s;
  int pick = 0x7fffffff;
  if (s > 0 && before <= r && r < scan[tid]) {
    double acc = before;
    for (int i = i0; i < i1; ++i) {
      const float v = row[i];
      if (!(v >= thr)) continue;
      acc += exp((v - md) * invT);
      if (acc > r) { pick = i; break; }
    }
    if (pick == 0x7fffffff) pick = lastKept;
  }
  pick = blockReduce(pick, [](int a, int b) { return min(a, b); }, redI);
  const int last = blockReduce(lastKept, [](int a, int b) { return max(a, b); }, redI);
  if (tid == 0) out[blockIdx.x] = pick != 0x7fffffff ? pick : last >= 0 ? last : arg;
}

}  // namespace

void launchSample(const float* logits, int rows, int V, const RowSampling* params, int32_t* out, cudaStream_t s) {
  if (rows <= 0) return;
  sampleKernel<<<rows, kThreads, 0, s>>>(logits, V, params, out);
  checkLaunch("sample");
}

}  // namespace pds::cuda
