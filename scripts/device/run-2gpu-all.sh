#!/usr/bin/env bash
# On the 2-GPU host, issue 5 acceptance 3 and the serving benchmark in one lease:
#   1. disagg-up e2e with P on GPU 0, D on GPU 1, KV GPU->GPU (cuda_ipc): every fixture case == reference,
#      2P1D / 2P2D with 50 concurrent requests; the decoder's "Retrieved ... (GPU→GPU cuda_ipc)" line
#   2. scripts/device/run-bench-compare.sh: seed workload, 1P1D vs colocated 2D (RATES, default "1")
# Carried: .device/node.xz, .device/nm-tok.tar.xz, .device/fixtures.tar.xz, dist, build/pdserve.node,
# build/pdserve_cuda.so. Logs go to $OUT.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
tar xJf .device/nm-tok.tar.xz
mkdir -p /tmp/fx && tar xJf .device/fixtures.tar.xz -C /tmp/fx
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi -L
PDSERVE_FIXTURES=/tmp/fx PDSERVE_TEST_DEVICE=cuda PDSERVE_TEST_SPLIT_GPUS=0:1 PDSERVE_TEST_KV_TRANSFER=cuda_ipc NCCL_NVLS_ENABLE=0 \
  timeout 300 node --test --test-concurrency=1 dist/test/e2e/disagg-up.test.js 2>&1 | tee "$OUT/e2e-2gpu.log" | grep -E '^(not )?ok|^# (pass|fail)'
grep -h "GPU→GPU" /tmp/pdserve-up-*/decoder-0.log 2>/dev/null | head -2
for rate in ${RATES:-1}; do
  RATE=$rate bash scripts/device/run-bench-compare.sh 2>&1 | grep -vE "^\s*$" | tail -45
done
