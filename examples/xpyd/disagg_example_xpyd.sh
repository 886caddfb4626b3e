#!/bin/bash
# 2 prefillers (7100, 7101) + 2 decoders (7200, 7201) + kv-server + proxy (9000), round robin on both sides.
# Usage: bash disagg_example_xpyd.sh [MODEL]    (DEVICE=cuda to use GPUs 0-3)
set -euo pipefail
MODEL="${1:-${MODEL:-}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../disagg-common.sh"

start_kv_server
wait_for_server "$KV_PORT" tcp
start_engine prefiller-0 kv_producer 7100 "$HERE/prefiller.yaml" "$(device_for 0)"
start_engine prefiller-1 kv_producer 7101 "$HERE/prefiller.yaml" "$(device_for 1)"
start_engine decoder-0 kv_consumer 7200 "$HERE/decoder.yaml" "$(device_for 2)"
start_engine decoder-1 kv_consumer 7201 "$HERE/decoder.yaml" "$(device_for 3)"
for port in 7100 7101 7200 7201; do wait_for_server "$port"; done
start_proxy 7100,7101 7200,7201
wait_for_server 9000
echo "All servers are up. You can send request now..."
echo "Try: bash $EXAMPLES_DIR/run_simple_query.sh   (Ctrl+C stops all; logs in $LOG_DIR)"
wait
