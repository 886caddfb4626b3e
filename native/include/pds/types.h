// Shared plain types of the native core. No Node-API here: kernels and backends never see JS.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pds {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

inline size_t dtypeSize(DType t) { return t == DType::F32 ? 4 : 2; }
DType parseDType(const std::string& s);  // "f32"|"float32"|"f16"|"float16"|"bf16"|"bfloat16"; throws
const char* dtypeName(DType t);

enum class RopeType : int { Default = 0, Llama3 = 1 };

// Architecture-level description of a decoder-only transformer (Llama / Mistral / Qwen2 / Qwen3).
struct ModelSpec {
  int numLayers = 0;
  int hiddenSize = 0;
  int intermediateSize = 0;
  int numHeads = 0;
  int numKvHeads = 0;
  int headDim = 0;          // explicit (Qwen3) or hiddenSize / numHeads
  int vocabSize = 0;
  float rmsNormEps = 1e-6f;
  float ropeTheta = 10000.f;
  RopeType ropeType = RopeType::Default;
  float ropeFactor = 1.f, ropeLowFreqFactor = 1.f, ropeHighFreqFactor = 4.f;
  int ropeOriginalMaxPos = 8192;
  bool tieWordEmbeddings = false;
  bool qkvBias = false;     // Qwen2
  bool qkNorm = false;      // Qwen3: RMSNorm over head_dim on q and k, before RoPE
  DType weightDtype = DType::F32;  // dtype weights are kept in on the device
  // Hugging Face keeps the rotary inv_freq buffer in the checkpoint dtype (a bf16 checkpoint rounds it to
  // bf16); the reference outputs depend on it, so inv_freq is rounded through this dtype.
  DType ropeFreqDtype = DType::F32;
};

// How the backend picks the token of one logits row (src/engine/sampler.ts has the same semantics; the host
// implementation is pds/sample-row.h, the CUDA kernel native/cuda/sample.cu):
//   temperature < 1e-5: argmax, lowest index on ties.
//   else, with m = the row's max and w(v) = exp((v - m) / temperature):
//     thr = the topK-th largest value (0 < topK < vocab), then max(thr, m + ln(minP) * temperature) (minP > 0);
//     topP < 1: thr = the largest value v >= thr with sum of w(x) over x >= v >= topP * sum of w(x) over x >= thr;
//     token = the first index i whose running sum of w over kept values (x >= thr, index order) exceeds
//     u * (sum of w over kept values); the last kept index if rounding leaves none.
struct RowSampling {
  float temperature = 0.f;
  float topP = 1.f;
  float minP = 0.f;
  float u = 0.f;      // uniform in [0, 1), drawn by the caller (a seeded request stays reproducible)
  int32_t topK = 0;   // <= 0: off
};

// One forward pass over a batch of sequences, each contributing >= 1 new tokens (prefill chunk or decode).
// T = total new tokens, S = sequences, R = rows whose logits are wanted.
// Sequence s owns rows [queryStartLoc[s], queryStartLoc[s+1]); its new tokens occupy positions
// contextLens[s]-n .. contextLens[s]-1 (n = its row count); attention is causal over all
// contextLens[s] cached+new tokens. The new K/V of row t is written to slot slotMapping[t]
// (= block_id * block_size + offset) before attention reads the cache.
struct BatchDesc {
  int numTokens = 0;               // T
  int numSeqs = 0;                 // S
  const int32_t* tokenIds = nullptr;      // [T]
  const int32_t* positions = nullptr;     // [T]
  const int32_t* slotMapping = nullptr;   // [T]
  const int32_t* queryStartLoc = nullptr; // [S+1]
  const int32_t* contextLens = nullptr;   // [S]
  const int32_t* blockTables = nullptr;   // [S, maxBlocksPerSeq]
  int maxBlocksPerSeq = 0;
  int numLogits = 0;                      // R
  const int32_t* logitsIndices = nullptr; // [R] row indices into [0, T)
  // Optional token choice on the device: with sampling [R] set, sampledTokens [R] receives each row's token.
  // forward's logitsOut may then be null (the logits are not copied out).
  const RowSampling* sampling = nullptr;
  int32_t* sampledTokens = nullptr;
  // Optional grammar masks (with sampling only): row maskRows[m] (ascending, distinct, in [0, R)) takes its
  // token under tokenMasks[m * ceil(vocab / 32) ..]: bit (id & 31) of word (id >> 5) set = allowed; the
  // other ids are -inf in that logits row (also in the copy in logitsOut) before the token choice. Other rows
  // pay nothing. pds/token-mask.h is the host implementation, native/cuda/token-mask.cu the device one.
  int numMaskedRows = 0;                  // M
  const int32_t* maskRows = nullptr;      // [M]
  const int32_t* tokenMasks = nullptr;    // [M, ceil(vocab / 32)]
};

}  // namespace pds
