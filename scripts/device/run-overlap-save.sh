#!/usr/bin/env bash
# On one GPU: 1P1D through the kv-server pool (P and D on the same GPU), seed workload, with the prefiller's
# KV saves overlapping its next forward (A, PDS_OVERLAP_KV_SAVE=1) vs saved between forwards (B, =0).
# Carried: .device/node.xz, .device/nm-tok.tar.xz, dist, build/pdserve.node, build/pdserve_cuda.so.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
[[ -d node_modules/fastify ]] || tar xJf .device/nm-tok.tar.xz
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
MODEL=${MODEL:-qwen3-0.6b}
E="--kv-cache-memory 8G"
PDS_OVERLAP_KV_SAVE=1 node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --kv-pool-size 8G \
  --port 9000 --run-dir /tmp/ov1 -- $E > "$OUT/up-overlap.log" 2>&1 &
PDS_OVERLAP_KV_SAVE=0 node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --kv-pool-size 8G \
  --port 9001 --run-dir /tmp/ov0 -- $E > "$OUT/up-serial.log" 2>&1 &
for i in $(seq 1 120); do grep -q "All servers are up" "$OUT/up-overlap.log" && grep -q "All servers are up" "$OUT/up-serial.log" && break; sleep 1; done
node dist/src/cli/main.js bench compare --a http://127.0.0.1:9000 --b http://127.0.0.1:9001 --label-a overlapped-saves --label-b serial-saves \
  --model $MODEL --dataset-name random --random-input-len 7500 --random-output-len 200 --num-prompts 30 \
  --burstiness 100 --request-rate ${RATE:-1} --ignore-eos --seed 0 2>&1 | tee "$OUT/compare-overlap.txt" | sed -n '/Comparison/,$p'
grep -h "Stored" /tmp/ov1/prefiller-0.log | tail -2; grep -h "Stored" /tmp/ov0/prefiller-0.log | tail -2
grep -h "Retrieved" /tmp/ov1/decoder-0.log | tail -1
kill %1 %2; wait
