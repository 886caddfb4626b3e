// Token embedding lookup with bounds checks.
#include <stdexcept>
#include <string>

#include "dtype.h"
#include "kernels.h"

namespace pds::cpu {

void embedding(const int32_t* ids, int T, const void* table, DType t, int vocab, int H, float* out) {
  for (int i = 0; i < T; i++)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw std::out_of_range("token id " + std::to_string(ids[i]) + " at row " + std::to_string(i) +
                              " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  const size_t es = dtypeSize(t);
  for (int i = 0; i < T; i++)
    toF32(static_cast<const char*>(table) + static_cast<size_t>(ids[i]) * H * es, t, out + static_cast<size_t>(i) * H, H);
}

}  // namespace pds::cpu
