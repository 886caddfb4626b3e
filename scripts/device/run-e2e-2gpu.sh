#!/usr/bin/env bash
# On the 2-GPU host: 1P1D with the prefiller on GPU 0 and the decoder on GPU 1 (KV through the
# kv-server's host pool), every fixture case equal to the reference; same carried files as run-e2e-cuda.sh.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
tar xJf .device/nm.tar.xz
mkdir -p /tmp/fx && tar xJf .device/fixtures.tar.xz -C /tmp/fx
export PDSERVE_FIXTURES=/tmp/fx PDSERVE_TEST_DEVICE=cuda PDSERVE_TEST_SPLIT_GPUS=0:1 NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi -L
node --test --test-concurrency=1 dist/test/e2e/disagg-up.test.js 2>&1 | tee "$OUT/e2e-2gpu.log" | grep -E '^(not )?ok|^# (pass|fail)'
grep -h "Loaded\|Retrieved" /tmp/pdserve-up-*/decoder-0.log 2>/dev/null | head -4
grep -h "Loaded" /tmp/pdserve-up-*/prefiller-0.log 2>/dev/null | head -2
