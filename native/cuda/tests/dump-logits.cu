// Debugging aid: the last-row logits of one fixture case after the first n layers (n = 1..L), written as
// raw f32 [L, vocab] so that scripts/device/lib/compare-hf.py (gpu-check.sh hf-compare) can diff them against transformers layer by layer.
#include <cstdio>

#include "../cuda-backend.h"
#include "fixture-model.h"
#include "harness.h"

namespace pds::test {

void dumpLogits(const std::string& dir, int caseIdx, DType dt, const std::string& outPath) {
  const Json cfg = Json::parse(readFile(dir + "/config.json"));
  const Json ref = Json::parse(readFile(dir + "/reference.json"));
  const ModelSpec spec = specFromConfig(cfg, dt);
  BackendOptions o; o.device = "cuda:0";
  cuda::CudaBackend be(spec, o);
  loadSafetensors(be, dir + "/model.safetensors");
  const std::vector<int> prompt = ref["cases"][caseIdx]["prompt"].ints();
  const int n = (int)prompt.size(), bs = 16, blocks = (n + bs - 1) / bs;
  be.allocKvCache(blocks + 1, bs, dt);
  std::vector<int32_t> ids(prompt.begin(), prompt.end()), pos(n), slots(n), qsl = {0, n}, ctx = {n}, bt(blocks), li = {n - 1};
  for (int i = 0; i < n; ++i) { pos[i] = i; slots[i] = i; }
  for (int j = 0; j < blocks; ++j) bt[j] = j;
  BatchDesc b;
  b.numTokens = n; b.numSeqs = 1; b.tokenIds = ids.data(); b.positions = pos.data(); b.slotMapping = slots.data();
  b.queryStartLoc = qsl.data(); b.contextLens = ctx.data(); b.blockTables = bt.data(); b.maxBlocksPerSeq = blocks;
  b.numLogits = 1; b.logitsIndices = li.data();
  FILE* f = std::fopen(outPath.c_str(), "wb");
  std::vector<float> logits(spec.vocabSize);
  for (int l = 1; l <= spec.numLayers; ++l) {
    be.setDebugLayers(l);
    be.forward(b, logits.data());
    std::fwrite(logits.data(), 4, logits.size(), f);
  }
  std::fclose(f);
  std::printf("dumped %d layers x %d logits of case %d (%d tokens) to %s\n", spec.numLayers, spec.vocabSize, caseIdx, n, outPath.c_str());
}

}  // namespace pds::test
