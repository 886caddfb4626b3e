// Sampling defaults from a model's generation_config.json, vLLM's `--generation-config auto|vllm|DIR`:
//   auto (default)  the model's generation_config.json
//   vllm            none: the server's own defaults (temperature 1, top_p 1, ...)
//   DIR             DIR/generation_config.json
// Only the fields vLLM takes are used: temperature, top_p, top_k, min_p, repetition_penalty, and
// max_new_tokens (the default max_tokens). A request's own value always wins over a default.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PdsError } from '../util/errors.js';
import { readOptionalJsonObject } from '../util/json-file.js';

export interface SamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  maxTokens?: number;
}

const fields: Array<[string, keyof SamplingDefaults]> = [
  ['temperature', 'temperature'],
  ['top_p', 'topP'],
  ['top_k', 'topK'],
  ['min_p', 'minP'],
  ['repetition_penalty', 'repetitionPenalty'],
  ['max_new_tokens', 'maxTokens'],
];

/** The defaults a generation_config.json object sets (non-numeric values are ignored). */
export function samplingDefaultsFrom(generationConfig: Record<string, unknown>): SamplingDefaults {
  const out: SamplingDefaults = {};
  for (const [key, field] of fields) {
    const v = generationConfig[key];
    if (typeof v === 'number' && Number.isFinite(v)) out[field] = v;
  }
  return out;
}

/** `--generation-config` value + the model's parsed generation_config.json -> the defaults to apply. */
export function resolveSamplingDefaults(mode: string, modelGenerationConfig: Record<string, unknown>): SamplingDefaults {
  if (mode === 'vllm') return {};
  if (mode === 'auto') return samplingDefaultsFrom(modelGenerationConfig);
  const file = join(mode, 'generation_config.json');
  if (!existsSync(file)) {
    throw new PdsError('PDS_ERR_CONFIG', `--generation-config must be auto, vllm or a directory holding generation_config.json (no ${file})`);
  }
  return samplingDefaultsFrom(readOptionalJsonObject(file));
}

/** vLLM's start-up line when defaults override the server's own; null when there are none. */
export function describeSamplingDefaults(d: SamplingDefaults): string | null {
  const parts = fields.filter(([, f]) => d[f] !== undefined).map(([k, f]) => `${k}=${d[f]}`);
  if (!parts.length) return null;
  return `Default sampling parameters have been overridden by the model's generation config: {${parts.join(', ')}}. ` +
    'If this is not intended, relaunch with `--generation-config vllm`.';
}
