// Request fields -> SamplingParams (src/engine/protocol.ts), with vLLM's range checks and messages, and
// the context-length rule: prompt + max_tokens <= max_model_len. Throws PdsError naming the field.
import { defaultSamplingParams, type SamplingParams } from '../engine/protocol.js';
import type { SamplingDefaults } from '../models/generation-config.js';
import { PdsError } from '../util/errors.js';
import { badRequest } from './http-errors.js';

/** The sampling fields both endpoints share, already type-checked by zod (null/undefined = default). */
export interface SamplingFields {
  stream?: boolean | null;
  stream_options?: unknown;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  seed?: number | null;
  repetition_penalty?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  stop?: string | string[] | null;
  stop_token_ids?: number[] | null;
  ignore_eos?: boolean | null;
  min_tokens?: number | null;
  n?: number | null;
  skip_special_tokens?: boolean | null;
  include_stop_str_in_output?: boolean | null;
  logit_bias?: Record<string, number> | null;
  response_format?: { type: string } | null;
  prompt_logprobs?: number | null;
  guided_json?: unknown;
  guided_regex?: unknown;
  guided_choice?: unknown;
  guided_grammar?: unknown;
}

/** Rejects features the engine does not implement, instead of silently ignoring them. */
function rejectUnsupported(f: SamplingFields): void {
  if (f.logit_bias && Object.keys(f.logit_bias).length) throw badRequest('logit_bias is not supported', 'logit_bias');
  if (f.response_format && f.response_format.type !== 'text') {
    throw badRequest(`response_format type '${f.response_format.type}' is not supported (structured output is not implemented)`, 'response_format');
  }
  if (f.prompt_logprobs != null) throw badRequest('prompt_logprobs is not supported', 'prompt_logprobs');
  for (const k of ['guided_json', 'guided_regex', 'guided_choice', 'guided_grammar'] as const) {
    if (f[k] != null) throw badRequest(`${k} is not supported (structured output is not implemented)`, k);
  }
}

/**
 * Everything except maxTokens, which depends on each prompt's length (see resolveMaxTokens). `model` =
 * the model's generation-config defaults (--generation-config), used where the request sets nothing.
 */
export function buildSampling(
  f: SamplingFields, logprobs: number | null, maxLogprobs: number, logprobsParam: 'logprobs' | 'top_logprobs' = 'logprobs',
  model: SamplingDefaults = {},
): SamplingParams {
  const d = defaultSamplingParams;
  const s: SamplingParams = {
    temperature: f.temperature ?? model.temperature ?? d.temperature,
    topP: f.top_p ?? model.topP ?? d.topP,
    topK: f.top_k ?? model.topK ?? d.topK,
    minP: f.min_p ?? model.minP ?? d.minP,
    seed: f.seed ?? null,
    repetitionPenalty: f.repetition_penalty ?? model.repetitionPenalty ?? d.repetitionPenalty,
    presencePenalty: f.presence_penalty ?? d.presencePenalty,
    frequencyPenalty: f.frequency_penalty ?? d.frequencyPenalty,
    maxTokens: f.max_tokens ?? d.maxTokens,
    minTokens: f.min_tokens ?? d.minTokens,
    stop: f.stop == null ? [] : typeof f.stop === 'string' ? [f.stop] : [...f.stop],
    stopTokenIds: f.stop_token_ids ? [...f.stop_token_ids] : [],
    ignoreEos: f.ignore_eos ?? d.ignoreEos,
    includeStopStrInOutput: f.include_stop_str_in_output ?? d.includeStopStrInOutput,
    logprobs,
    skipSpecialTokens: f.skip_special_tokens ?? d.skipSpecialTokens,
  };
  rejectUnsupported(f);
  if (f.stream_options != null && !f.stream) {
    throw badRequest('Stream options can only be defined when `stream=True`.', 'stream_options');
  }
  const n = f.n ?? 1;
  if (n < 1) throw badRequest(`n must be at least 1, got ${n}.`, 'n');
  if (n > 1) throw badRequest('n>1 is not supported', 'n');
  if (!(s.temperature >= 0)) throw badRequest(`temperature must be non-negative, got ${s.temperature}.`, 'temperature');
  if (!(s.topP > 0 && s.topP <= 1)) throw badRequest(`top_p must be in (0, 1], got ${s.topP}.`, 'top_p');
  if (s.topK < -1) throw badRequest(`top_k must be -1 or 0 (disable), or at least 1, got ${s.topK}.`, 'top_k');
  if (!(s.minP >= 0 && s.minP <= 1)) throw badRequest(`min_p must be in [0, 1], got ${s.minP}.`, 'min_p');
  if (!(s.repetitionPenalty > 0)) {
    throw badRequest(`repetition_penalty must be greater than zero, got ${s.repetitionPenalty}.`, 'repetition_penalty');
  }
  for (const [name, v] of [['presence_penalty', s.presencePenalty], ['frequency_penalty', s.frequencyPenalty]] as const) {
    if (!(v >= -2 && v <= 2)) throw badRequest(`${name} must be in [-2, 2], got ${v}.`, name);
  }
  if (f.max_tokens != null && f.max_tokens < 1) throw badRequest(`max_tokens must be at least 1, got ${f.max_tokens}.`, 'max_tokens');
  if (s.minTokens < 0) throw badRequest(`min_tokens must be greater than or equal to 0, got ${s.minTokens}.`, 'min_tokens');
  if (f.max_tokens != null && s.minTokens > f.max_tokens) {
    throw badRequest(`min_tokens must be less than or equal to max_tokens=${f.max_tokens}, got ${s.minTokens}.`, 'min_tokens');
  }
  if (s.stopTokenIds.some((t) => t < 0)) throw badRequest('stop_token_ids must be non-negative.', 'stop_token_ids');
  if (s.stop.some((x) => x.length === 0)) throw badRequest('stop strings must not be empty.', 'stop');
  if (logprobs !== null) {
    if (logprobs < 0) throw badRequest(`${logprobsParam} must be non-negative, got ${logprobs}.`, logprobsParam);
    if (logprobs > maxLogprobs) {
      throw badRequest(`Requested sample logprobs of ${logprobs}, which is greater than max allowed: ${maxLogprobs}`, logprobsParam);
    }
  }
  return s;
}

/**
 * max_tokens for one prompt. `requested` null = the endpoint's default: `defaultMax` capped to what the
 * context leaves (null defaultMax = all the context leaves, as vLLM does for chat). Callers pass the
 * model's max_new_tokens (generation config) as defaultMax when it sets one.
 */
export function resolveMaxTokens(
  requested: number | null, defaultMax: number | null, promptLen: number, maxModelLen: number,
  param: 'max_tokens' | 'max_completion_tokens', promptParam: 'prompt' | 'messages',
): number {
  if (promptLen >= maxModelLen) {
    throw new PdsError('PDS_ERR_CONTEXT_LENGTH',
      `This model's maximum context length is ${maxModelLen} tokens. However, your request has ${promptLen} input tokens. ` +
      'Please reduce the length of the input messages.', promptParam);
  }
  const room = maxModelLen - promptLen;
  if (requested === null) return defaultMax === null ? room : Math.min(defaultMax, room);
  if (requested > room) {
    throw new PdsError('PDS_ERR_CONTEXT_LENGTH',
      `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptLen + requested} tokens ` +
      `(${promptLen} in the messages, ${requested} in the completion). Please reduce the length of the messages or completion.`, param);
  }
  return requested;
}

/** A copy of `base` with this prompt's maxTokens; rejects min_tokens above it. */
export function withMaxTokens(base: SamplingParams, maxTokens: number): SamplingParams {
  if (base.minTokens > maxTokens) {
    throw badRequest(`min_tokens must be less than or equal to max_tokens=${maxTokens}, got ${base.minTokens}.`, 'min_tokens');
  }
  return { ...base, maxTokens, stop: [...base.stop], stopTokenIds: [...base.stopTokenIds] };
}
