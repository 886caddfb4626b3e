// launchPrefillAttention: the prefill attention entry point (kernels.h). Runs the default kernel,
// launchPrefillAttentionMma (prefill-attention-mma.cu), or the fallback launchPrefillAttentionWmma
// (prefill-attention-wmma-fallback.cu) when the environment has PDSERVE_PREFILL_ATTN=wmma. Both: same
// arguments (PrefillAttnArgs) and results.
#include <cstdlib>
#include <string>

#include "common.cuh"
#include "kernels.h"

namespace pds::cuda {

void launchPrefillAttention(DType t, const PrefillAttnArgs& a, cudaStream_t s) {
  const char* v = std::getenv("PDSERVE_PREFILL_ATTN");  // read per launch: the benchmark flips it between runs
  if (v != nullptr && std::string(v) == "wmma") launchPrefillAttentionWmma(t, a, s); else launchPrefillAttentionMma(t, a, s);
}

}  // namespace pds::cuda
