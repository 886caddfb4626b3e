// AVX-512 instantiation of paged attention.
#include <vector>

#include "attention-impl.h"

namespace pds::cpu {
void pagedAttentionAvx512(ThreadPool& pool, const float* q, int ldq, int numHeads, const KvLayer& kv,
                          const AttnBatch& b, float* out, int ldo) {
  attentionDispatch(pool, q, ldq, numHeads, kv, b, out, ldo);
}
}  // namespace pds::cpu
