// KV peer transfer check + benchmark (two GPUs of one host): a child process owns a KV cache on GPU A and
// exports it (kvExportIpc); this process maps it (kvImportPeer) into a KV cache on GPU B and pulls
// N tokens' blocks with kvCopyFromPeer, scattered block ids on both sides. Checks the bytes (kvGather
// on B == what was kvScatter'ed on A), then compares the copy's bandwidth with a measured
// cudaMemcpyPeer of the same bytes between plain allocations on the same GPUs (ratio printed).
// Shape: Llama-3.1-8B KV (32 layers, 8 kv heads, head dim 128, bf16, block 16): 7500 tokens ~ 0.98 GB.
//   build: scripts/device/gpu-check.sh pack (here); run: scripts/device/gpu-check.sh 2gpu (2-GPU host)
//   run:   build/kv-peer-bench --so build/pdserve_cuda.so [--tokens 7500] [--reps 10] [--src 0 --dst 1]
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pds/backend.h"

namespace {

using Factory = pds::Backend* (*)(const pds::ModelSpec*, const pds::BackendOptions*, char*, size_t);

std::unique_ptr<pds::Backend> make(const std::string& so, int device) {
  void* lib = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) { std::fprintf(stderr, "dlopen %s: %s\n", so.c_str(), dlerror()); std::exit(2); }
  auto f = (Factory)dlsym(lib, "pds_create_cuda_backend");
  pds::ModelSpec s;  // Llama-3.1-8B's KV shape; small other dims (weights are not used)
  s.numLayers = 32; s.numKvHeads = 8; s.headDim = 128; s.numHeads = 8; s.hiddenSize = 1024;
  s.intermediateSize = 1024; s.vocabSize = 256; s.weightDtype = pds::DType::BF16;
  pds::BackendOptions o; o.device = "cuda"; o.deviceIndex = device;
  char err[512] = {0};
  pds::Backend* b = f(&s, &o, err, sizeof err);
  if (!b) { std::fprintf(stderr, "backend on cuda:%d: %s\n", device, err); std::exit(2); }
  return std::unique_ptr<pds::Backend>(b);
}

void pattern(std::vector<uint8_t>& v) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < v.size(); ++i) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; v[i] = (uint8_t)x; }
}

bool readAll(int fd, void* p, size_t n) {
  auto* c = (char*)p;
  while (n) { ssize_t r = read(fd, c, n); if (r <= 0) return false; c += r; n -= (size_t)r; }
  return true;
}

double secs(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
}

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); std::exit(2); } } while (0)

}  // namespace

int main(int argc, char** argv) {
  std::string so = "build/pdserve_cuda.so";
  int tokens = 7500, reps = 10, srcDev = 0, dstDev = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--so" && i + 1 < argc) so = argv[++i];
    else if (a == "--tokens" && i + 1 < argc) tokens = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--src" && i + 1 < argc) srcDev = std::atoi(argv[++i]);
    else if (a == "--dst" && i + 1 < argc) dstDev = std::atoi(argv[++i]);
    else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
  }
  const int bs = 16, cacheBlocks = (tokens + bs - 1) / bs + 131;
  const int nb = (tokens + bs - 1) / bs, ntok = nb * bs;
  std::vector<int32_t> src(nb), dst(nb);
  for (int i = 0; i < nb; ++i) { src[i] = (int32_t)((i * 7L + 3) % cacheBlocks); dst[i] = (int32_t)((i * 11L + 5) % cacheBlocks); }

  int toChild[2], toParent[2];
  if (pipe(toChild) || pipe(toParent)) { std::perror("pipe"); return 2; }
  const pid_t pid = fork();  // before any CUDA call
  if (pid == 0) {
    auto a = make(so, srcDev);
    a->allocKvCache(cacheBlocks, bs, pds::DType::BF16);
    std::vector<uint8_t> host((size_t)ntok * a->kvBytesPerToken());
    pattern(host);
    a->kvScatter(src.data(), nb, ntok, host.data());
    const std::string h = a->kvExportIpc();
    const uint32_t n = (uint32_t)h.size();
    if (write(toParent[1], &n, 4) != 4 || write(toParent[1], h.data(), n) != (ssize_t)n) return 2;
    char c;
    readAll(toChild[0], &c, 1);  // the parent is done with our memory
    return 0;
  }
  int rc = 0;
  {
    auto b = make(so, dstDev);
    b->allocKvCache(cacheBlocks, bs, pds::DType::BF16);
    uint32_t n = 0;
    if (!readAll(toParent[0], &n, 4)) { std::fprintf(stderr, "exporter died\n"); return 2; }
    std::string h(n, '\0');
    readAll(toParent[0], h.data(), n);
    int peer = -1;
    try {
      peer = b->kvImportPeer(h);
      if (b->kvImportPeer(h) != peer) { std::printf("FAIL import is not cached per handle\n"); rc = 1; }
    } catch (const std::exception& e) {
      std::printf("FAIL kvImportPeer: %s\n", e.what());
      char c = 1; (void)!write(toChild[1], &c, 1); waitpid(pid, nullptr, 0);
      return 1;
    }
    const double bytes = (double)nb * bs * b->kvBytesPerToken();
    b->kvCopyFromPeer(peer, src.data(), dst.data(), nb);  // warm-up
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      b->kvCopyFromPeer(peer, src.data(), dst.data(), nb);
      t.push_back(secs(t0));
    }
    std::sort(t.begin(), t.end());
    const double ipcGBs = bytes / t[t.size() / 2] / 1e9;

    std::vector<uint8_t> want((size_t)ntok * b->kvBytesPerToken()), got(want.size());
    pattern(want);
    b->kvGather(dst.data(), nb, ntok, got.data());
    const bool same = std::memcmp(want.data(), got.data(), want.size()) == 0;
    std::printf("%s KV bytes after kvCopyFromPeer equal the exporter's (%d tokens, %d blocks, scattered ids)\n", same ? "PASS" : "FAIL", ntok, nb);
    if (!same) rc = 1;
    try {
      int32_t badSrc = cacheBlocks, okDst = 0;
      b->kvCopyFromPeer(peer, &badSrc, &okDst, 1);
      std::printf("FAIL out-of-range peer block accepted\n"); rc = 1;
    } catch (const std::exception& e) { std::printf("PASS out-of-range peer block -> %s\n", e.what()); }

    // baseline: cudaMemcpyPeer of the same bytes between plain allocations on the same two GPUs
    void *pa = nullptr, *pb = nullptr;
    CK(cudaSetDevice(srcDev)); CK(cudaMalloc(&pa, (size_t)bytes)); CK(cudaMemset(pa, 1, (size_t)bytes));
    CK(cudaSetDevice(dstDev)); CK(cudaMalloc(&pb, (size_t)bytes));
    cudaError_t pe = cudaDeviceEnablePeerAccess(srcDev, 0); if (pe != cudaSuccess) cudaGetLastError();
    CK(cudaSetDevice(srcDev));
    pe = cudaDeviceEnablePeerAccess(dstDev, 0); if (pe != cudaSuccess) cudaGetLastError();
    CK(cudaMemcpyPeer(pb, dstDev, pa, srcDev, (size_t)bytes)); CK(cudaDeviceSynchronize());
    std::vector<double> tb;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      CK(cudaMemcpyPeer(pb, dstDev, pa, srcDev, (size_t)bytes));
      CK(cudaSetDevice(dstDev)); CK(cudaDeviceSynchronize()); CK(cudaSetDevice(srcDev)); CK(cudaDeviceSynchronize());
      tb.push_back(secs(t0));
    }
    std::sort(tb.begin(), tb.end());
    const double peerGBs = bytes / tb[tb.size() / 2] / 1e9;
    std::printf("kv peer copy: %d tokens (%.3f GB), cuda:%d -> cuda:%d, median of %d\n", ntok, bytes / 1e9, srcDev, dstDev, reps);
    std::printf("  kvCopyFromPeer (CUDA IPC, one kernel)  %8.3f ms  %7.1f GB/s\n", t[t.size() / 2] * 1e3, ipcGBs);
    std::printf("  cudaMemcpyPeer (same bytes, baseline)  %8.3f ms  %7.1f GB/s\n", tb[tb.size() / 2] * 1e3, peerGBs);
    std::printf("  ratio kvCopyFromPeer / cudaMemcpyPeer = %.3f (target >= 0.75)\n", ipcGBs / peerGBs);
    cudaFree(pa);
    CK(cudaSetDevice(dstDev));
    cudaFree(pb);
  }
  char c = 1;
  (void)!write(toChild[1], &c, 1);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { std::printf("FAIL exporter exited with %d\n", st); rc = 1; }
  return rc;
}
