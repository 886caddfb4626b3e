#!/bin/bash
# 1 prefiller (port 7100) + 1 decoder (port 7200) + kv-server (65432) + proxy (9000).
# Usage: bash disagg_example_1p1d.sh [MODEL]    (DEVICE=cuda to use GPUs 0 and 1)
set -euo pipefail
MODEL="${1:-${MODEL:-}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/../disagg-common.sh"

start_kv_server
wait_for_server "$KV_PORT" tcp
start_engine prefiller-0 kv_producer 7100 "$HERE/prefiller.yaml" "$(device_for 0)"
start_engine decoder-0 kv_consumer 7200 "$HERE/decoder.yaml" "$(device_for 1)"
wait_for_server 7100
wait_for_server 7200
start_proxy 7100 7200
wait_for_server 9000
echo "All servers are up. You can send request now..."
echo "Try: bash $EXAMPLES_DIR/run_simple_query.sh   (Ctrl+C stops all; logs in $LOG_DIR)"
wait
