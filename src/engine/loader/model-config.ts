// Hugging Face config.json -> NativeModelSpec plus the few facts the engine needs (eos/bos, max length).
// Supported: LlamaForCausalLM (incl. rope_type llama3), MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM.
// Both rope config styles: legacy rope_theta/rope_scaling and rope_parameters {rope_theta, rope_type, ...}.
import type { DType, NativeModelSpec } from '../../native/binding.js';
import { dtypeFromName } from '../../util/dtype.js';
import { PdsError } from '../../util/errors.js';

export const supportedArchitectures = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM'] as const;
export type Architecture = (typeof supportedArchitectures)[number];

export interface ModelConfig {
  arch: Architecture;
  modelType: string;
  eosTokenIds: number[];
  bosTokenId: number | null;
  /** Longest supported context: max_position_embeddings, capped at the sliding window when one is active. */
  maxPositionEmbeddings: number;
  /** Checkpoint dtype (dtype / torch_dtype), f32 when absent. */
  dtype: DType;
  spec: NativeModelSpec;
}

export class ModelConfigError extends PdsError {
  constructor(message: string) {
    super('PDS_ERR_CONFIG', message);
    this.name = 'ModelConfigError';
  }
}

function num(cfg: Record<string, unknown>, key: string, def?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (def !== undefined) return def;
    throw new ModelConfigError(`config.json: missing required field '${key}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelConfigError(`config.json: '${key}' must be a number`);
  return v;
}

function int(cfg: Record<string, unknown>, key: string, def?: number): number {
  const v = num(cfg, key, def);
  if (!Number.isInteger(v) || v <= 0) throw new ModelConfigError(`config.json: '${key}' must be a positive integer`);
  return v;
}

export function parseDtype(v: unknown): DType {
  if (v === undefined || v === null) return 'f32';
  const d = dtypeFromName(String(v));
  if (!d) throw new ModelConfigError(`config.json: unsupported dtype '${String(v)}' (expected float32, float16 or bfloat16)`);
  return d;
}

function idList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/**
 * Parses config.json. `weightDtype` overrides the checkpoint dtype for the weights kept in memory.
 * `hasLmHead`: whether the checkpoint holds lm_head.weight (false forces tied embeddings).
 */
export function parseModelConfig(cfg: Record<string, unknown>, opts: { weightDtype?: DType; hasLmHead?: boolean } = {}): ModelConfig {
  const archs = cfg.architectures;
  const arch = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : undefined;
  if (!arch || !(supportedArchitectures as readonly string[]).includes(arch))
    throw new ModelConfigError(
      `unsupported model architecture ${arch ? `'${arch}'` : '(config.json has no architectures)'}; supported: ${supportedArchitectures.join(', ')}`,
    );
  const a = arch as Architecture;
  const hidden = int(cfg, 'hidden_size');
  const heads = int(cfg, 'num_attention_heads');
  const kvHeads = int(cfg, 'num_key_value_heads', heads);
  const headDim = cfg.head_dim == null ? hidden / heads : int(cfg, 'head_dim');
  if (!Number.isInteger(headDim)) throw new ModelConfigError('config.json: hidden_size is not a multiple of num_attention_heads');
  if (heads % kvHeads) throw new ModelConfigError('config.json: num_attention_heads must be a multiple of num_key_value_heads');

  const rp = (cfg.rope_parameters ?? null) as Record<string, unknown> | null;
  const rs = (cfg.rope_scaling ?? null) as Record<string, unknown> | null;
  const rope: Record<string, unknown> = { ...(rs ?? {}), ...(rp ?? {}) };
  const theta = typeof rope.rope_theta === 'number' ? rope.rope_theta : num(cfg, 'rope_theta', 10000);
  const ropeTypeRaw = String(rope.rope_type ?? rope.type ?? 'default');
  let ropeType: 'default' | 'llama3';
  if (ropeTypeRaw === 'default') ropeType = 'default';
  else if (ropeTypeRaw === 'llama3') ropeType = 'llama3';
  else throw new ModelConfigError(`config.json: unsupported rope_type '${ropeTypeRaw}' (supported: default, llama3)`);

  const dtype = parseDtype(cfg.dtype ?? cfg.torch_dtype);
  if (!(a === 'Qwen2ForCausalLM') && cfg.attention_bias === true)
    throw new ModelConfigError(`config.json: attention_bias is not supported for ${a} (only Qwen2's q/k/v biases are)`);
  if (cfg.mlp_bias === true) throw new ModelConfigError('config.json: mlp_bias is not supported');
  // Sliding-window attention equals full attention while the context fits in the window: cap the length there.
  const window = typeof cfg.sliding_window === 'number' && cfg.use_sliding_window !== false ? cfg.sliding_window : Infinity;
  // HF defaults tie_word_embeddings to false for all four architectures; a checkpoint without lm_head is tied.
  const tieCfg = typeof cfg.tie_word_embeddings === 'boolean' ? cfg.tie_word_embeddings : false;
  const spec: NativeModelSpec = {
    numLayers: int(cfg, 'num_hidden_layers'),
    hiddenSize: hidden,
    intermediateSize: int(cfg, 'intermediate_size'),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    vocabSize: int(cfg, 'vocab_size'),
    rmsNormEps: num(cfg, 'rms_norm_eps', 1e-6),
    ropeTheta: theta,
    ropeType,
    tieWordEmbeddings: opts.hasLmHead === false ? true : tieCfg,
    qkvBias: a === 'Qwen2ForCausalLM',
    qkNorm: a === 'Qwen3ForCausalLM',
    weightDtype: opts.weightDtype ?? dtype,
    ropeFreqDtype: dtype,
  };
  if (ropeType === 'llama3') {
    spec.ropeFactor = num(rope, 'factor');
    spec.ropeLowFreqFactor = num(rope, 'low_freq_factor', 1);
    spec.ropeHighFreqFactor = num(rope, 'high_freq_factor', 4);
    spec.ropeOriginalMaxPos = int(rope, 'original_max_position_embeddings', 8192);
  }
  const bos = cfg.bos_token_id;
  return {
    arch: a,
    modelType: String(cfg.model_type ?? ''),
    eosTokenIds: idList(cfg.eos_token_id),
    bosTokenId: typeof bos === 'number' ? bos : null,
    maxPositionEmbeddings: Math.min(int(cfg, 'max_position_embeddings', 2048), window),
    dtype,
    spec,
  };
}
