// pagedAttention(): AVX2 instantiation plus the run-time choice of ISA.
#include <vector>

#include "attention-impl.h"

namespace pds::cpu {
void pagedAttentionAvx512(ThreadPool& pool, const float* q, int ldq, int numHeads, const KvLayer& kv,
                          const AttnBatch& b, float* out, int ldo);

void pagedAttention(ThreadPool& pool, const float* q, int ldq, int numHeads, const KvLayer& kv, const AttnBatch& b,
                    float* out, int ldo) {
  if (hasAvx512())
    pagedAttentionAvx512(pool, q, ldq, numHeads, kv, b, out, ldo);
  else
    attentionDispatch(pool, q, ldq, numHeads, kv, b, out, ldo);
}
}  // namespace pds::cpu
