#!/usr/bin/env bash
# On one GPU: where a 7500-token prompt's TTFT goes in one engine (PDS_TRACE_STEPS=1 step lines), colocated.
# Carried: .device/node.xz, .device/nm-tok.tar.xz, dist, build/pdserve.node, build/pdserve_cuda.so.
set -uo pipefail
xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
[[ -d node_modules/fastify ]] || tar xJf .device/nm-tok.tar.xz
MODEL=${MODEL:-qwen3-0.6b}
PDS_TRACE_STEPS=1 node dist/src/cli/main.js serve $MODEL --load-format dummy --device cuda --port 8100 --kv-cache-memory 8G > /tmp/serve.log 2>&1 &
for i in $(seq 1 90); do curl -sf localhost:8100/health > /dev/null && break; sleep 1; done
node dist/src/cli/main.js bench serve --port 8100 --model $MODEL --dataset-name random --random-input-len 7500 \
  --random-output-len 4 --num-prompts 4 --request-rate 0.5 --ignore-eos --seed 1 2>&1 | grep -E "TTFT|duration"
grep -E "step:|Avg|prompt" /tmp/serve.log | tail -30
kill %1; wait
