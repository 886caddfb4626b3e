// cuBLAS resolved at run time with dlopen/dlsym (the build never links it): libcublas.so.13, then .so.12,
// from the loader path, $PDSERVE_CUBLAS_DIR, or /usr/local/cuda/lib64. Only GemmEx and handle setup are used.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "pds/types.h"

namespace pds::cuda {

class Cublas {
 public:
  // Loads the library (once per process) and creates a handle bound to `stream` with `workspace`
  // (needed so that GEMMs can be captured in CUDA graphs). Throws with the dlopen error text on failure.
  Cublas(cudaStream_t stream, void* workspace, size_t workspaceBytes);
  ~Cublas();
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;

  // Row-major C[M, N] = A[M, K] * B[N, K]^T (a Linear layer: A = activations, B = weight [out, in]).
  // A and B in `in`; C in `in`, or f32 when cF32. f32 accumulation (no TF32 for f32 inputs).
  // accumulate: C += A * B^T instead of C = A * B^T.
  void gemm(DType in, const void* A, const void* B, void* C, int M, int N, int K, bool cF32, int ldc = 0,
            bool accumulate = false);
  const std::string& libraryPath() const;

 private:
  void* handle_ = nullptr;
};

}  // namespace pds::cuda
