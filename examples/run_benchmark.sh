#!/bin/bash
# The vLLM/LMCache benchmark against the proxy on :9000. Args after the script go to bench serve.
set -euo pipefail
PORT="${PORT:-9000}"
MODEL="${MODEL:-$(curl -sf "http://localhost:$PORT/v1/models" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).data[0].id))')}"
npx pdserve bench serve --port "$PORT" --model "$MODEL" \
  --dataset-name random --random-input-len 7500 --random-output-len 200 \
  --num-prompts 30 --burstiness 100 --request-rate 1 --ignore-eos "$@"
