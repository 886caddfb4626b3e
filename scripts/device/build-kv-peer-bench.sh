#!/usr/bin/env bash
# Builds build/kv-peer-bench (native/cuda/tests/peer): the GPU->GPU KV copy check and its bandwidth vs
# cudaMemcpyPeer. It dlopens build/pdserve_cuda.so (built by scripts/build.mjs); no GPU needed to build.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin"
nvcc -O2 -std=c++17 -Inative/include -gencode arch=compute_90,code=sm_90 -cudart static \
  -o build/kv-peer-bench native/cuda/tests/peer/kv-peer-bench.cu -ldl -lpthread
echo "built build/kv-peer-bench"
