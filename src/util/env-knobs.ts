// Every environment variable pdserve's production code reads (src/, native/, scripts/*.mjs), in one list.
// env-knobs.test.ts scans the tree and fails on a knob read but not listed here, or listed but no longer
// read. A name ending in '_' is a prefix (PDSERVE_KV_<FIELD>). Test-only knobs (PDSERVE_TEST_*,
// PDSERVE_FUZZ_*, stubs' STUB_*) live with their tests. Flags win over env where both exist.
// One prefix: PDSERVE_ (plus the HF_/VLLM_/OPENAI_ names other tools define). A knob with `renamedFrom`
// was read under that old PDS_ name before; the old name is read nowhere now, and src/util/env-renamed.ts
// warns once at startup when one is still set.

export interface EnvKnob {
  name: string;
  /** where it is read */
  where: string;
  meaning: string;
  /** the name this knob had before the one-prefix rename (only warned about, never read) */
  renamedFrom?: string;
}

export const ENV_KNOBS: readonly EnvKnob[] = [
  // ---- user-facing ----
  { name: 'PDSERVE_API_KEY', where: 'src/security/api-key.ts', meaning: 'clients\' API key(s) when --api-key is not given (then VLLM_API_KEY)' },
  { name: 'VLLM_API_KEY', where: 'src/security/api-key.ts', meaning: 'vLLM\'s name for the same, read last' },
  { name: 'PDSERVE_INTERNAL_SECRET_FILE', where: 'src/security/internal-secret.ts', meaning: 'internal secret file when --internal-secret-file is not given' },
  { name: 'PDSERVE_KV_CONFIG_FILE', where: 'src/kv/config.ts', meaning: 'KV layer YAML when --kv-config is not given' },
  { name: 'PDSERVE_KV_', where: 'src/kv/config.ts', meaning: 'PDSERVE_KV_<FIELD>: overrides one KV config field (LMCache field name, upper-case)' },
  { name: 'PDSERVE_LOG_LEVEL', where: 'src/util/logger.ts', meaning: 'debug | info | warn | error' },
  { name: 'PDSERVE_DEBUG', where: 'src/bench/cli-run.ts', meaning: 'bench: print stacks of unexpected errors' },
  { name: 'PDSERVE_UP_ENGINE_CMD', where: 'src/up/launcher.ts', meaning: 'up: JSON argv that replaces the child command (tests run stubs)' },
  { name: 'PDSERVE_LIFELINE_FD', where: 'src/util/lifeline.ts', meaning: 'set by up for its children: the fd whose EOF means the parent died' },
  { name: 'OPENAI_API_KEY', where: 'src/bench/request.ts, src/bench/server-probe.ts', meaning: 'bench serve: the key sent to the server (as vllm bench)' },
  { name: 'HF_ENDPOINT', where: 'src/models/hub.ts', meaning: 'Hugging Face hub URL' },
  { name: 'HF_HOME', where: 'src/models/hub.ts', meaning: 'Hugging Face home (cache in HF_HOME/hub)' },
  { name: 'HF_HUB_CACHE', where: 'src/models/hub.ts', meaning: 'Hugging Face cache directory' },
  { name: 'HF_HUB_OFFLINE', where: 'src/models/hub.ts', meaning: '1/true: never download' },
  { name: 'HF_TOKEN', where: 'src/models/hub.ts', meaning: 'token for gated or private repos' },
  { name: 'HUGGING_FACE_HUB_TOKEN', where: 'src/models/hub.ts', meaning: 'older name of HF_TOKEN' },
  { name: 'PDSERVE_OPS_THREADS', where: 'native/cpu/thread-pool.cc', meaning: 'CPU backend thread count (0/unset: all cores)' },
  { name: 'PDSERVE_NO_AVX512', where: 'native/cpu/matmul.cc', meaning: '1: CPU matmuls avoid AVX-512' },
  { name: 'PDSERVE_NO_AVX512BF16', where: 'native/cpu/matmul.avx512bf16.cc', meaning: '1: bf16-weight matmuls avoid the AVX512-BF16 (vdpbf16ps) kernels' },
  { name: 'PDSERVE_CPU_BF16_DOT', where: 'native/cpu/matmul.avx512bf16.cc', meaning: 'round: activations rounded to bf16 (llama.cpp precision, faster); default splits them hi + lo (f32-level results)' },
  { name: 'LD_LIBRARY_PATH', where: 'scripts/peer-compare.mjs', meaning: 'peer-compare: extended (not replaced) with the llama.cpp libraries folder' },
  { name: 'PDSERVE_PEERS_DIR', where: 'scripts/peer-compare.mjs', meaning: 'peer-compare: the peers folder (default ../shared/peers)' },
  // ---- build ----
  { name: 'PDSERVE_SKIP_CUDA', where: 'scripts/build.mjs', meaning: '1: skip the CUDA build' },
  { name: 'PDSERVE_JOBS', where: 'scripts/build.mjs', meaning: 'parallel native compiles' },
  { name: 'PDSERVE_CUDA_ARCH', where: 'scripts/build.mjs', meaning: 'CUDA architectures, comma-separated (default 90)' },
  { name: 'PDSERVE_TEST_CONCURRENCY', where: 'scripts/run-tests.mjs', meaning: 'test files run at once (default 2)' },
  // ---- developer switches (measurements, A/B) ----
  { name: 'PDSERVE_TRACE_STEPS', renamedFrom: 'PDS_TRACE_STEPS', where: 'src/engine/llm-engine.ts', meaning: '1: a log line per engine step (forward, save+postprocess times)' },
  { name: 'PDSERVE_OVERLAP_KV_SAVE', renamedFrom: 'PDS_OVERLAP_KV_SAVE', where: 'src/engine/create-engine.ts', meaning: '1/0: force KV saves beside the next forward on/off' },
  { name: 'PDSERVE_TRACE_FORWARD', renamedFrom: 'PDS_TRACE_FORWARD', where: 'native/binding/model.cc, native/cuda/cuda-forward.cu', meaning: '1: per-forward timing lines' },
  { name: 'PDSERVE_PREFILL_ATTN', renamedFrom: 'PDS_PREFILL_ATTN', where: 'native/cuda/prefill-attention.cu', meaning: 'wmma: the fallback prefill attention kernel' },
  { name: 'PDSERVE_CUDA_FUSED_ATTN_TOKENS', renamedFrom: 'PDS_CUDA_FUSED_ATTN_TOKENS', where: 'native/cuda/cuda-forward.cu', meaning: 'token count up to which attention runs fused' },
  { name: 'PDSERVE_CUDA_PDL', renamedFrom: 'PDS_CUDA_PDL', where: 'native/cuda/cuda-backend.cu', meaning: '0: no programmatic dependent launch' },
  { name: 'PDSERVE_CUDA_GRAPHS', renamedFrom: 'PDS_CUDA_GRAPHS', where: 'native/cuda/cuda-backend.cu', meaning: '0: no CUDA graphs for decode' },
  { name: 'PDSERVE_CUDA_GEMV_ROWS', renamedFrom: 'PDS_CUDA_GEMV_ROWS', where: 'native/cuda/cuda-backend.cu', meaning: 'batch rows up to which matmuls use the GEMV kernel' },
  { name: 'PDSERVE_CPU_ASYNC_FORWARD', renamedFrom: 'PDS_CPU_ASYNC_FORWARD', where: 'native/cpu/cpu-backend.cc', meaning: '1: CPU forwards take the binding\'s asynchronous path (tests it without a GPU)' },
  { name: 'PDSERVE_CUBLAS_DIR', renamedFrom: 'PDS_CUBLAS_DIR', where: 'native/cuda/cublas-loader.cc', meaning: 'extra directory searched for libcublas' },
  { name: 'PDSERVE_GRAMMAR_MASK_DEVICE', where: 'src/engine/create-engine.ts', meaning: '1: on CUDA, grammar rows masked on the device (token-mask.cu; off until verified on a GPU)' },
  { name: 'PDSERVE_GRAMMAR_MASK_HOST', where: 'src/engine/sampler.ts', meaning: '1: grammar rows sampled on the host from copied-out logits (not masked in the backend)' },
  { name: 'PDSERVE_CUDA_FUSED_DECODE', where: 'native/cuda/cuda-backend.cu', meaning: 'decode batches: 0 = unfused kernels, 1 = fused GEMVs (norm prologue, SwiGLU / residual epilogues), 2 = also qkv GEMV + RoPE + KV write; default 0 until verified on a GPU' },
];
