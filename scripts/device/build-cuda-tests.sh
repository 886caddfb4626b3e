#!/usr/bin/env bash
# Builds build/cuda-tests (the CUDA backend's test + benchmark harness) from native/cuda/**: no GPU and no
# cuBLAS needed at build time (cuBLAS is dlopen'ed at run time). Also builds build/pdserve_cuda.so.
#   scripts/device/build-cuda-tests.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin"
PDSERVE_JOBS="${PDSERVE_JOBS:-2}" node scripts/build.mjs cuda
mkdir -p build/obj-tests
flags=(-O3 -std=c++17 -Inative/include -gencode arch=compute_90,code=sm_90)
objs=()
pids=()
for src in native/cuda/*.cu native/cuda/*.cc native/cuda/tests/*.cu; do
  obj="build/obj-tests/$(echo "$src" | tr '/' '_').o"
  objs+=("$obj")
  if [[ ! -f "$obj" || "$src" -nt "$obj" || -n "$(find native/cuda native/include -name '*.h' -newer "$obj" -o -name '*.cuh' -newer "$obj" | head -1)" ]]; then
    nvcc "${flags[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    if (( ${#pids[@]} >= ${PDSERVE_JOBS:-2} )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
nvcc "${flags[@]}" -cudart static -o build/cuda-tests "${objs[@]}" -ldl -lpthread
echo "built build/cuda-tests"
