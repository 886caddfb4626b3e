// createCudaBackend: dlopen(build/pdserve_cuda.so) and call its C factory. The library is never unloaded
// (the backend's code lives in it).
#include <dlfcn.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "pds/backend.h"

namespace pds {

std::unique_ptr<Backend> createCudaBackend(const std::string& libPath, const ModelSpec& spec,
                                           const BackendOptions& opts) {
  if (libPath.empty())
    throw std::runtime_error("CUDA device requested but no CUDA backend library path was given (opts.cudaLibPath)");
  if (::access(libPath.c_str(), R_OK) != 0)
    throw std::runtime_error("CUDA backend not built: " + libPath +
                             " is missing (it is built only when nvcc is on PATH at install time)");
  void* h = ::dlopen(libPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = ::dlerror();
    throw std::runtime_error("cannot load the CUDA backend " + libPath + ": " + (e ? e : "unknown dlopen error") +
                             " (is the NVIDIA driver installed?)");
  }
  using Factory = Backend* (*)(const ModelSpec*, const BackendOptions*, char*, size_t);
  auto fn = reinterpret_cast<Factory>(::dlsym(h, "pds_create_cuda_backend"));
  if (!fn) throw std::runtime_error(libPath + " does not export pds_create_cuda_backend");
  char err[1024] = {0};
  Backend* b = fn(&spec, &opts, err, sizeof err);
  if (!b) throw std::runtime_error(std::string("CUDA backend failed to start on ") + opts.device + ": " +
                                   (err[0] ? err : "no CUDA device available"));
  return std::unique_ptr<Backend>(b);
}

}  // namespace pds
