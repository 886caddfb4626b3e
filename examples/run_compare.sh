#!/bin/bash
# Disaggregated (1 prefiller + 1 decoder) vs colocated (2 decoders) on the same hardware, same seeded
# workload, side by side: `pdserve bench compare` with an HTML report (compare.html).
# Usage: bash run_compare.sh [MODEL] [extra bench flags...]   (DEVICE=cuda: both layouts use GPUs 0 and 1)
set -euo pipefail
MODEL="${1:-${MODEL:-}}"
shift || true
HERE="$(cd "$(dirname "$0")" && pwd)"
if [[ -z "${PDSERVE:-}" ]]; then
  if [[ -f "$HERE/../dist/src/cli/main.js" ]]; then PDSERVE="node $HERE/../dist/src/cli/main.js"; else PDSERVE="npx pdserve"; fi
fi
DEVICE="${DEVICE:-cpu}"
RUN_DIR="${RUN_DIR:-$PWD/runs/compare-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RUN_DIR"
if [[ "$DEVICE" == cuda* ]]; then
  PD_DEV=(--device cuda --prefill-devices 0 --decode-devices 1)
  CO_DEV=(--device cuda --decode-devices 0,1)
else
  PD_DEV=(--device "$DEVICE")
  CO_DEV=(--device "$DEVICE")
fi
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# shellcheck disable=SC2086
$PDSERVE up $MODEL --prefill 1 --decode 1 --port 9000 "${PD_DEV[@]}" --run-dir "$RUN_DIR/pd" >"$RUN_DIR/pd.out" 2>&1 &
PIDS+=($!)
# shellcheck disable=SC2086
$PDSERVE up $MODEL --prefill 0 --decode 2 --port 9001 "${CO_DEV[@]}" --run-dir "$RUN_DIR/colocated" >"$RUN_DIR/colocated.out" 2>&1 &
PIDS+=($!)
for out in pd colocated; do
  until grep -q "All servers are up" "$RUN_DIR/$out.out"; do
    if ! kill -0 "${PIDS[0]}" 2>/dev/null || ! kill -0 "${PIDS[1]}" 2>/dev/null; then
      echo "A layout failed to start:" >&2; cat "$RUN_DIR"/*.out >&2; exit 1
    fi
    sleep 1
  done
done
echo "Both layouts are up (logs in $RUN_DIR); benchmarking..."
$PDSERVE bench compare --a http://localhost:9000 --b http://localhost:9001 --label-a pd-1p1d --label-b colocated-2 \
  --dataset-name random --random-input-len "${INPUT_LEN:-7500}" --random-output-len "${OUTPUT_LEN:-200}" \
  --num-prompts "${NUM_PROMPTS:-30}" --burstiness 100 --request-rate "${RATE:-1}" --ignore-eos \
  --report "$RUN_DIR/compare.html" "$@"
echo "Report: $RUN_DIR/compare.html"
