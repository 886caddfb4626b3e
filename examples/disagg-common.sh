#!/bin/bash
# Shared by the disagg_example_*.sh launchers: start/wait/stop helpers. Source it, do not run it.
# Env: PDSERVE (command, default: this checkout's CLI, else `npx pdserve`), MODEL (default: the
# engine's default model, stories260k), DEVICE (cpu | cuda; default cpu), LOG_DIR (default ./logs), ENGINE_ARGS.

EXAMPLES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$EXAMPLES_DIR/.." && pwd)"
if [[ -z "${PDSERVE:-}" ]]; then
  if [[ -f "$REPO_DIR/dist/src/cli/main.js" ]]; then PDSERVE="node $REPO_DIR/dist/src/cli/main.js"; else PDSERVE="npx pdserve"; fi
fi
MODEL="${MODEL:-}"
DEVICE="${DEVICE:-cpu}"
LOG_DIR="${LOG_DIR:-$PWD/logs}"
ENGINE_ARGS="${ENGINE_ARGS:-}"
KV_PORT=65432 # must match remote_url in the yaml files
KV_POOL_FILE="${KV_POOL_FILE:-/dev/shm/pdserve-example-$$.pool}"
PIDS=()
mkdir -p "$LOG_DIR"

# cleanup CODE: stop every server (SIGTERM, SIGKILL after 10 s), remove the pool file, exit CODE.
cleanup() {
  local code=${1:-0}
  trap - INT TERM EXIT
  echo "Stopping all servers..."
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$KV_POOL_FILE"
  exit "$code"
}
trap 'cleanup 0' INT TERM
trap 'cleanup $?' EXIT

# device_for INDEX -> "cpu" or "cuda:INDEX"
device_for() {
  if [[ "$DEVICE" == cuda* ]]; then echo "cuda:$1"; else echo "$DEVICE"; fi
}

start_kv_server() {
  echo "Starting kv-server on port $KV_PORT (log: $LOG_DIR/kv-server.log)"
  $PDSERVE kv-server --port "$KV_PORT" --pool-size "${KV_POOL_SIZE:-1G}" --pool-file "$KV_POOL_FILE" >"$LOG_DIR/kv-server.log" 2>&1 &
  PIDS+=($!)
}

# start_engine NAME ROLE(kv_producer|kv_consumer) PORT YAML DEVICE
start_engine() {
  local name=$1 role=$2 port=$3 yaml=$4 device=$5
  echo "Starting $name on port $port ($device, log: $LOG_DIR/$name.log)"
  # shellcheck disable=SC2086
  $PDSERVE serve $MODEL --port "$port" --device "$device" \
    --kv-transfer-config "{\"kv_connector\":\"PdConnector\",\"kv_role\":\"$role\"}" \
    --kv-config "$yaml" $ENGINE_ARGS >"$LOG_DIR/$name.log" 2>&1 &
  PIDS+=($!)
}

# start_proxy "PREFILL_PORTS" "DECODE_PORTS" (comma lists)
start_proxy() {
  echo "Starting proxy on port 9000 (log: $LOG_DIR/proxy.log)"
  $PDSERVE proxy --port 9000 --prefiller-host localhost --prefiller-port "$1" \
    --decoder-host localhost --decoder-port "$2" >"$LOG_DIR/proxy.log" 2>&1 &
  PIDS+=($!)
}

# wait_for_server PORT [http|tcp]: up to $TIMEOUT s (default 300); exits on failure with the log tails
wait_for_server() {
  local port=$1 kind=${2:-http} deadline=$((SECONDS + ${TIMEOUT:-300}))
  while (( SECONDS < deadline )); do
    if [[ $kind == tcp ]]; then
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    else
      curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0
    fi
    for pid in "${PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "A server exited during startup; last lines of the logs:" >&2
        tail -n 30 "$LOG_DIR"/*.log >&2
        exit 1
      fi
    done
    sleep 0.5
  done
  echo "Timed out waiting for port $port" >&2
  exit 1
}
