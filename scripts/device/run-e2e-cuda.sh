#!/usr/bin/env bash
# On the lent GPU host: issue 5 acceptance 1 and 2 plus the fixture e2e tests with --device cuda.
#   kernels vs CPU reference + fixture models through the .so (native/cuda/tests, when .device/cuda-run has them)
#   serve-fixtures (f32), serve-bf16 (bf16 weights, f32 KV cache), disagg-up (f32, colocated P and D)
# Expects (carried): .device/node.xz, .device/nm.tar.xz (production node_modules without the packaged
# tokenizers), .device/fixtures.tar.xz, dist/, build/pdserve.node, build/pdserve_cuda.so; optional
# .device/cuda-run/cuda-tests (scripts/device/build-cuda-tests.sh). Logs go to $OUT.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
if [[ -f .device/nm-tok.tar.xz ]]; then tar xJf .device/nm-tok.tar.xz; else tar xJf .device/nm.tar.xz; fi
mkdir -p /tmp/fx && tar xJf .device/fixtures.tar.xz -C /tmp/fx
export PDSERVE_FIXTURES=/tmp/fx PDSERVE_TEST_DEVICE=cuda NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi -L
if [[ -x .device/cuda-run/cuda-tests ]]; then
  .device/cuda-run/cuda-tests --kernels --models /tmp/fx/models --so build/pdserve_cuda.so > "$OUT/cuda-tests.log" 2>&1
  echo "cuda-tests exit $?"; grep -E '^(FAIL|INFO|checks)|greedy' "$OUT/cuda-tests.log"
fi
node --test --test-concurrency=1 dist/test/e2e/serve-fixtures.test.js dist/test/e2e/serve-bf16.test.js ${E2E_EXTRA:-} 2>&1 \
  | tee "$OUT/e2e-cuda.log" | grep -E '^(not )?ok|^# (pass|fail)|differ'
