#!/usr/bin/env bash
# On the 2-GPU host: (1) build/kv-peer-bench: GPU->GPU KV copy of a 7500-token Llama-3.1-8B-shaped KV
# checked byte for byte and timed against cudaMemcpyPeer of the same bytes; (2) 1P1D (P on GPU 0, D on
# GPU 1) with `up --kv-transfer cuda_ipc`, every fixture case equal to the reference, the decoder's log
# showing the GPU->GPU Retrieved line. Carried: .device/{node.xz,nm.tar.xz,fixtures.tar.xz} as in
# run-e2e-2gpu.sh, and .device/p2p/ = this branch's dist/, build/pdserve.node, build/pdserve_cuda.so,
# build/kv-peer-bench and this script.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
tar xJf .device/nm.tar.xz
mkdir -p /tmp/fx && tar xJf .device/fixtures.tar.xz -C /tmp/fx
rm -rf dist && cp -r .device/p2p/dist . && mkdir -p build && cp .device/p2p/pdserve.node .device/p2p/pdserve_cuda.so .device/p2p/kv-peer-bench build/
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi topo -m | head -4
timeout 90 ./build/kv-peer-bench --so build/pdserve_cuda.so --tokens 7500 --reps 10 2>&1 | tee "$OUT/kv-peer-bench.log"
export PDSERVE_FIXTURES=/tmp/fx PDSERVE_TEST_DEVICE=cuda PDSERVE_TEST_SPLIT_GPUS=0:1 NCCL_NVLS_ENABLE=0 PDSERVE_TEST_KV_TRANSFER=cuda_ipc
timeout ${E2E_TIMEOUT:-170} node --test --test-concurrency=1 --test-name-pattern="${E2E_PATTERN:-1P1D}" dist/test/e2e/disagg-up.test.js 2>&1 | tee "$OUT/e2e-p2p.log" | grep -E '^(not )?ok|^# (pass|fail)'
grep -h "GPU→GPU\|failed\|peer" /tmp/pdserve-up-*/decoder-0.log 2>/dev/null | head -8
grep -h "Loaded\|KV peer\|release" /tmp/pdserve-up-*/prefiller-0.log 2>/dev/null | head -4
tar czf "$OUT/up-logs.tgz" /tmp/pdserve-up-* 2>/dev/null || true
