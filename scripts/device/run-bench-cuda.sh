#!/usr/bin/env bash
# On the lent GPU host: issue 5 benchmarks.
#   native/cuda/tests --bench (per-kernel decode times, decode b=1/32/64, prefill 2048, KV gather; bf16 and
#   bf16 weights + f32 KV), once with programmatic dependent launch and (Qwen3 only) once without;
#   `pdserve bench engine --device cuda` for Llama-3.1-8B and Qwen3-0.6B shapes (ratios vs the GPU's limits);
#   `pdserve bench kv --device cuda`: 7500 Llama-8B-shaped tokens GPU <-> local CPU tier / kv-server pool pages.
# Expects (carried): .device/node.xz, .device/nm-tok.tar.xz, dist/, build/pdserve.node, build/pdserve_cuda.so,
# .device/cuda-run/cuda-tests. Logs go to $OUT.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
if [[ -f .device/nm-tok.tar.xz ]]; then tar xJf .device/nm-tok.tar.xz; else tar xJf .device/nm.tar.xz; fi
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi -L
.device/cuda-run/cuda-tests --bench > "$OUT/bench.log" 2>&1; echo "bench exit $?"
PDS_CUDA_PDL=0 .device/cuda-run/cuda-tests --bench-quick > "$OUT/bench-nopdl.log" 2>&1; echo "bench (no PDL) exit $?"
for m in llama-3.1-8b qwen3-0.6b; do
  node dist/src/cli/main.js bench engine --model $m --load-format dummy --device cuda --prompt-len 2048 \
    --decode-ctx 2048 --batches 1,32,64 2>/dev/null | tee -a "$OUT/bench-engine.log"
done
node dist/src/cli/main.js bench kv --device cuda --paths local_cpu,shm --tokens 7500 --layers 32 --kv-heads 8 --head-dim 128 \
  2>&1 | tee "$OUT/bench-kv-cuda.log"
echo "--- PDL"
sed -n '/^metric/,$p' "$OUT/bench.log"
echo "--- no PDL"; sed -n '/^metric/,$p' "$OUT/bench-nopdl.log"
