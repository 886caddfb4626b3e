// dlopen'ed cuBLAS (see cublas-loader.h). The few prototypes and enum values are declared here because
// the cuBLAS headers are not needed (nor present) where this is built.
#include "cublas-loader.h"

#include <dlfcn.h>
#include <library_types.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace pds::cuda {
namespace {

using Status = int;
constexpr int kOpN = 0, kOpT = 1;
constexpr int kCompute32F = 68;   // CUBLAS_COMPUTE_32F
constexpr int kGemmDefault = -1;  // CUBLAS_GEMM_DEFAULT
constexpr int kDefaultMath = 0;   // CUBLAS_DEFAULT_MATH

struct Api {
  Status (*create)(void**) = nullptr;
  Status (*destroy)(void*) = nullptr;
  Status (*setStream)(void*, cudaStream_t) = nullptr;
  Status (*setWorkspace)(void*, void*, size_t) = nullptr;
  Status (*setMathMode)(void*, int) = nullptr;
  Status (*gemmEx)(void*, int, int, int, int, int, const void*, const void*, cudaDataType_t, int, const void*,
                   cudaDataType_t, int, const void*, void*, cudaDataType_t, int, int, int) = nullptr;
  std::string path;
  std::string error;
};

Api loadApi() {
  Api api;
  std::vector<std::string> dirs = {""};
  if (const char* d = std::getenv("PDSERVE_CUBLAS_DIR")) dirs.insert(dirs.begin(), std::string(d) + "/");
  dirs.push_back("/usr/local/cuda/lib64/");
  std::string errs;
  void* lib = nullptr;
  for (const char* ver : {"13", "12"}) {
    for (const auto& dir : dirs) {
      // libcublasLt first, global, so that libcublas finds it even when loaded by absolute path.
      dlopen((dir + "libcublasLt.so." + ver).c_str(), RTLD_NOW | RTLD_GLOBAL);
      const std::string p = dir + "libcublas.so." + ver;
      lib = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) { api.path = p; break; }
      const char* e = dlerror();
      errs += std::string("; ") + (e ? e : p.c_str());
    }
    if (lib) break;
  }
  if (!lib) { api.error = "cuBLAS not found (tried libcublas.so.13/.so.12" + errs + ")"; return api; }
  auto sym = [&](const char* name) {
    void* f = dlsym(lib, name);
    if (!f) api.error = std::string("cuBLAS symbol missing: ") + name;
    return f;
  };
  api.create = (Status(*)(void**))sym("cublasCreate_v2");
  api.destroy = (Status(*)(void*))sym("cublasDestroy_v2");
  api.setStream = (Status(*)(void*, cudaStream_t))sym("cublasSetStream_v2");
  api.setWorkspace = (Status(*)(void*, void*, size_t))sym("cublasSetWorkspace_v2");
  api.setMathMode = (Status(*)(void*, int))sym("cublasSetMathMode");
  api.gemmEx = (decltype(api.gemmEx))sym("cublasGemmEx");
  return api;
}

const Api& api() {
  static std::once_flag once;
  static Api a;
  std::call_once(once, [] { a = loadApi(); });
  if (!a.error.empty()) throw std::runtime_error("CUDA backend: " + a.error);
  return a;
}

void ok(Status s, const char* what) {
  if (s != 0) throw std::runtime_error(std::string("CUDA backend: cuBLAS ") + what + " failed (status " + std::to_string(s) + ")");
}

cudaDataType_t cudaType(DType t) {
  return t == DType::F32 ? CUDA_R_32F : t == DType::F16 ? CUDA_R_16F : CUDA_R_16BF;
}

}  // namespace

Cublas::Cublas(cudaStream_t stream, void* workspace, size_t workspaceBytes) {
  const Api& a = api();
  ok(a.create(&handle_), "create (out of GPU memory?)");
  ok(a.setStream(handle_, stream), "set stream");
  ok(a.setMathMode(handle_, kDefaultMath), "set math mode");
  if (workspace) ok(a.setWorkspace(handle_, workspace, workspaceBytes), "set workspace");
}

Cublas::~Cublas() {
  if (handle_) api().destroy(handle_);
}

const std::string& Cublas::libraryPath() const { return api().path; }

void Cublas::gemm(DType in, const void* A, const void* B, void* C, int M, int N, int K, bool cF32, int ldc,
                  bool accumulate) {
  if (M <= 0 || N <= 0) return;
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  // Column-major view: C^T [N, M] = B [N, K] (stored as col-major K x N, so transposed) * A^T (col-major K x M).
  ok(api().gemmEx(handle_, kOpT, kOpN, N, M, K, &alpha, B, cudaType(in), K, A, cudaType(in), K, &beta, C,
                  cF32 ? CUDA_R_32F : cudaType(in), ldc ? ldc : N, kCompute32F, kGemmDefault),
     "GemmEx");
}

}  // namespace pds::cuda
