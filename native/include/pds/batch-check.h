// The one BatchDesc validator, shared by every backend (cpu/cpu-backend.cc, cuda/cuda-forward.cu): a batch
// passes here before any kernel runs. Header-only so that both the host compiler and nvcc build it.
// Throws std::invalid_argument for a malformed batch (shapes, order, missing arrays) and std::out_of_range
// for an id outside the vocabulary, the KV cache or the batch (the binding maps them to TypeError / RangeError).
// Does not check device-specific limits (a backend's workspace sizes): those stay with the backend.
#pragma once
#include <algorithm>
#include <stdexcept>
#include <string>

#include "pds/types.h"

namespace pds {

struct KvGeometry {
  int numBlocks = 0;
  int blockSize = 0;
};

// What the backends plan with once a batch is known to be valid.
struct BatchFacts {
  bool decode = true;  // every sequence has exactly one new token
  int maxContext = 0;  // the longest contextLens entry
};

// logitsOut: whether the caller gave a logits buffer (it may be null only with sampling).
inline BatchFacts checkBatch(const BatchDesc& b, int vocabSize, const KvGeometry& kv, bool logitsOut) {
  auto bad = [](const std::string& m) { throw std::invalid_argument("forward: " + m); };
  auto outside = [](const std::string& m) { throw std::out_of_range("forward: " + m); };
  const int T = b.numTokens, S = b.numSeqs, R = b.numLogits, bs = kv.blockSize;
  if (T <= 0 || S <= 0 || S > T || T > (1 << 24))
    bad("need numTokens >= numSeqs >= 1 (got " + std::to_string(T) + ", " + std::to_string(S) + ")");
  if (!b.tokenIds || !b.positions || !b.slotMapping || !b.queryStartLoc || !b.contextLens || !b.blockTables)
    bad("missing input array");
  if (R < 0 || R > T || (R > 0 && !b.logitsIndices)) bad("bad logits request (" + std::to_string(R) + " rows)");
  if (R > 0 && !logitsOut && !b.sampling) bad("logits requested without an output buffer or sampling");
  if (b.sampling && !b.sampledTokens) bad("sampling without sampledTokens");
  if (b.maxBlocksPerSeq <= 0) bad("maxBlocksPerSeq must be positive");
  if (b.queryStartLoc[0] != 0 || b.queryStartLoc[S] != T) bad("queryStartLoc must start at 0 and end at numTokens");
  BatchFacts f;
  for (int s = 0; s < S; ++s) {
    const int n = b.queryStartLoc[s + 1] - b.queryStartLoc[s], ctx = b.contextLens[s];
    if (n < 1) bad("sequence " + std::to_string(s) + " has no new tokens (queryStartLoc must increase)");
    if (ctx < n) bad("sequence " + std::to_string(s) + " has more new tokens than contextLens");
    if (ctx > static_cast<long long>(b.maxBlocksPerSeq) * bs)
      bad("sequence " + std::to_string(s) + ": context length " + std::to_string(ctx) + " exceeds maxBlocksPerSeq");
    f.decode = f.decode && n == 1;
    f.maxContext = std::max(f.maxContext, ctx);
    const int32_t* row = b.blockTables + static_cast<size_t>(s) * b.maxBlocksPerSeq;
    for (int j = 0; j < (ctx + bs - 1) / bs; ++j)
      if (row[j] < 0 || row[j] >= kv.numBlocks)
        outside("sequence " + std::to_string(s) + ": block id " + std::to_string(row[j]) + " is out of range [0, " +
                std::to_string(kv.numBlocks) + ") (outside the KV cache)");
  }
  const long long slots = static_cast<long long>(kv.numBlocks) * bs;
  for (int t = 0; t < T; ++t) {
    if (b.tokenIds[t] < 0 || b.tokenIds[t] >= vocabSize)
      outside("token id " + std::to_string(b.tokenIds[t]) + " at row " + std::to_string(t) + " is out of range [0, " +
              std::to_string(vocabSize) + ") (outside the vocabulary)");
    if (b.slotMapping[t] < -1 || b.slotMapping[t] >= slots)
      outside("slot " + std::to_string(b.slotMapping[t]) + " at row " + std::to_string(t) + " is past the KV cache (" +
              std::to_string(slots) + " slots; -1 skips the write)");
    if (b.positions[t] < 0) outside("position " + std::to_string(b.positions[t]) + " at row " + std::to_string(t) + " is negative");
  }
  for (int r = 0; r < R; ++r)
    if (b.logitsIndices[r] < 0 || b.logitsIndices[r] >= T)
      outside("logits index " + std::to_string(b.logitsIndices[r]) + " outside [0, numTokens)");
  const int M = b.numMaskedRows;
  if (M < 0 || M > R) bad("bad token mask request (" + std::to_string(M) + " rows)");
  if (M > 0 && (!b.sampling || !b.maskRows || !b.tokenMasks)) bad("token masks need sampling, maskRows and tokenMasks");
  for (int m = 0; m < M; ++m) {
    if (b.maskRows[m] < 0 || b.maskRows[m] >= R)
      outside("mask row " + std::to_string(b.maskRows[m]) + " outside [0, numLogits)");
    if (m > 0 && b.maskRows[m] <= b.maskRows[m - 1]) bad("maskRows must be ascending and distinct");
  }
  return f;
}

}  // namespace pds
