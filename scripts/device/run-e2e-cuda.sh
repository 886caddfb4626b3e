#!/usr/bin/env bash
# On the lent GPU host: the fixture e2e tests with --device cuda (f32) and the engine benchmark in bf16.
# Expects (carried): .device/node.xz, .device/nm.tar.xz (production node_modules without the packaged
# tokenizers), .device/fixtures.tar.xz, dist/, build/pdserve.node, build/pdserve_cuda.so.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
tar xJf .device/nm.tar.xz
mkdir -p /tmp/fx && tar xJf .device/fixtures.tar.xz -C /tmp/fx
export PDSERVE_FIXTURES=/tmp/fx PDSERVE_TEST_DEVICE=cuda NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi -L
node --test --test-concurrency=1 dist/test/e2e/serve-fixtures.test.js dist/test/e2e/disagg-up.test.js 2>&1 | tee "$OUT/e2e-cuda.log" | grep -E '^(not )?ok|^# (pass|fail)'
for m in llama-3.1-8b qwen3-0.6b; do
  node dist/src/cli/main.js bench engine --model $m --load-format dummy --device cuda --weight-dtype bf16 --kv-dtype bf16 \
    --prompt-len 2048 --batches 1,32,64 2>&1 | tee -a "$OUT/bench-engine-cuda.log"
done
