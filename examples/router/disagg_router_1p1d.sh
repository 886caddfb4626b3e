#!/bin/bash
# production-stack's seed flow with pdserve's own router: 1 prefiller (8100) + 1 decoder (8200) +
# kv-server, fronted by `pdserve router` on 8005 with vllm_router's exact flags (disaggregated_prefill
# picks each engine's role by its --static-model-labels entry).
# Usage: bash disagg_router_1p1d.sh [MODEL]    (DEVICE=cuda to use GPUs 0 and 1)
# Then:  curl -s localhost:8005/v1/completions -H 'content-type: application/json' \
#          -d '{"model":"meta-llama/Llama-3.1-8B-Instruct","prompt":"Once upon a time","max_tokens":16}'
#        curl -s localhost:8005/engines; curl -s localhost:8005/metrics | grep '^vllm:'
set -euo pipefail
MODEL="${1:-${MODEL:-}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../disagg-common.sh"
SERVED=meta-llama/Llama-3.1-8B-Instruct
ENGINE_ARGS="${ENGINE_ARGS:-} --served-model-name $SERVED" # last: the flag takes a list

start_kv_server
wait_for_server "$KV_PORT" tcp
start_engine prefiller-0 kv_producer 8100 "$HERE/../1p1d/prefiller.yaml" "$(device_for 0)"
start_engine decoder-0 kv_consumer 8200 "$HERE/../1p1d/decoder.yaml" "$(device_for 1)"
wait_for_server 8100
wait_for_server 8200
echo "Starting pdserve router on port 8005 (log: $LOG_DIR/router.log)"
$PDSERVE router --port 8005 --service-discovery static \
  --static-backends "http://localhost:8100,http://localhost:8200" \
  --static-models "$SERVED,$SERVED" \
  --static-model-labels "llama-prefill,llama-decode" --log-stats --log-stats-interval 10 \
  --engine-stats-interval 10 --request-stats-window 10 --routing-logic disaggregated_prefill \
  --prefill-model-labels "llama-prefill" --decode-model-labels "llama-decode" >"$LOG_DIR/router.log" 2>&1 &
PIDS+=($!)
wait_for_server 8005
echo "All servers are up. You can send request now... (router on :8005; Ctrl+C stops all; logs in $LOG_DIR)"
wait
