#!/usr/bin/env bash
# On the 2-GPU host: the seed workload (random 7500 in / 200 out, 30 prompts, rate 1, burstiness 100) against
# 1P1D (P on GPU 0, D on GPU 1, KV GPU->GPU through CUDA IPC) and the colocated baseline (2 decoders, one per
# GPU) behind the same proxy, side by side. Carried: .device/node.xz, .device/nm-tok.tar.xz (production
# node_modules with the packaged tokenizers' json only), dist, build/pdserve.node, build/pdserve_cuda.so.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
[[ -d node_modules/fastify ]] || tar xJf .device/nm-tok.tar.xz
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
MODEL=${MODEL:-qwen3-0.6b}
RATE=${RATE:-1}
E="--kv-cache-memory 16G"
node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --prefill-devices 0 --decode-devices 1 \
  --kv-transfer cuda_ipc --port 9000 --run-dir /tmp/pd-$RATE -- $E > "$OUT/up-pd.log" 2>&1 &
node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --prefill 0 --decode 2 --decode-devices 0,1 \
  --port 9001 --run-dir /tmp/colo-$RATE -- $E > "$OUT/up-colo.log" 2>&1 &
for i in $(seq 1 120); do grep -q "All servers are up" "$OUT/up-pd.log" && grep -q "All servers are up" "$OUT/up-colo.log" && break; sleep 1; done
tail -2 "$OUT/up-pd.log" "$OUT/up-colo.log"
node dist/src/cli/main.js bench compare --a http://127.0.0.1:9000 --b http://127.0.0.1:9001 --label-a 1P1D-cuda_ipc --label-b colocated-2D \
  --model $MODEL --dataset-name random --random-input-len 7500 --random-output-len 200 --num-prompts 30 \
  --burstiness 100 --request-rate $RATE --ignore-eos --seed 0 --report "$OUT/compare-rate$RATE.html" 2>&1 | tee "$OUT/compare-rate$RATE.txt"
grep -h "GPU→GPU" /tmp/pd-$RATE/decoder-0.log | tail -2
kill %1 %2; wait
