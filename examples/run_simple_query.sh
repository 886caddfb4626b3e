#!/bin/bash
# One completion through the proxy on :9000 (PORT to change). The model name comes from /v1/models.
set -euo pipefail
PORT="${PORT:-9000}"
MODEL="${MODEL:-$(curl -sf "http://localhost:$PORT/v1/models" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).data[0].id))')}"
curl -sS -X POST "http://localhost:$PORT/v1/completions" \
  -H "Content-Type: application/json" \
  -d "{\"model\": \"$MODEL\", \"prompt\": \"Explain the significance of KV cache in language models.\", \"max_tokens\": 32, \"temperature\": 0}"
echo
