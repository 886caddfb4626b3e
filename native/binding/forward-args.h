// forward / forwardSample arguments: JS batch and sampling objects -> owned copies the backend reads
// (ForwardInput), the outputs it writes (ForwardOutput), and the JS value a forward resolves with.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "pds/types.h"

namespace pds::binding {

struct ForwardInput {
  std::vector<int32_t> tokenIds, positions, slotMapping, queryStartLoc, contextLens, blockTables, logitsIndices;
  int maxBlocksPerSeq = 0;
  std::vector<RowSampling> sampling;  // [R] with forwardSample, else empty
  std::vector<int32_t> maskRows, tokenMasks;  // forwardSample's optional grammar masks (BatchDesc's)
  bool sample = false;                // forwardSample: resolve with { tokens, logits }
  bool wantLogits = true;             // forwardSample's third argument; always true for forward
};

// logits [numLogits, vocab] f32, allocated uninitialized (the backend overwrites all of it) and handed to JS.
struct ForwardOutput {
  float* logits = nullptr;
  size_t n = 0;
  std::vector<int32_t> tokens;  // [R] sampled tokens (forwardSample)
  ~ForwardOutput() { delete[] logits; }
};

// forward(batch) / forwardSample(batch, sampling, wantLogits): checks the shapes (TypeError / RangeError
// naming the field) and copies the arrays, so the JS objects may change once the call returns.
// vocab: the model's (sizes the optional sampling.masks).
std::shared_ptr<ForwardInput> forwardInputFromJs(const Napi::CallbackInfo& info, bool sample, int vocab);

// Points d at in's arrays and out's buffers (allocating out's logits on first use); returns logitsOut.
float* fillBatch(const ForwardInput& in, ForwardOutput& out, int vocab, BatchDesc& d);

// forward: Float32Array logits. forwardSample: { tokens: Int32Array, logits: Float32Array | null }.
// The logits buffer moves into the returned ArrayBuffer (no copy).
Napi::Value forwardResult(Napi::Env env, const ForwardInput& in, ForwardOutput& out);

}  // namespace pds::binding
