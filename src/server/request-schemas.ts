// Wire shapes of the OpenAI-compatible requests (vLLM's extensions included), checked with zod at the
// edge. Types only: value ranges are checked in sampling.ts with vLLM's messages. Unknown fields are
// ignored, as vLLM does.
import { z } from 'zod';
import { kvTransferParamsSchema } from '../engine/protocol.js';

const int = () => z.number().int();

/** Sampling and output fields shared by /v1/completions and /v1/chat/completions. */
const common = {
  model: z.string().nullish(),
  max_tokens: int().nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  top_k: int().nullish(),
  min_p: z.number().nullish(),
  seed: int().nullish(),
  repetition_penalty: z.number().nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  stop_token_ids: z.array(int()).nullish(),
  ignore_eos: z.boolean().nullish(),
  min_tokens: int().nullish(),
  n: int().nullish(),
  best_of: int().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(), // parallel-sampling.ts parseLogitBias
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish(), continuous_usage_stats: z.boolean().nullish() }).nullish(),
  return_token_ids: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  kv_transfer_params: kvTransferParamsSchema.nullish(), // honoured only on signed (peer) requests
  // pdserve's proxy on a prefill leg: validate as the decode leg will (decode-limits.ts)
  decode_limits: z.object({
    max_tokens: int().nullish(),
    min_tokens: int().nullish(),
    max_model_len: int().positive().nullish(),
  }).strict().nullish(),
  user: z.string().nullish(),
  // response_format, structured_outputs, guided_*: structured-fields.ts; prompt_logprobs: prompt-logprobs.ts
  response_format: z.looseObject({ type: z.string() }).nullish(),
  prompt_logprobs: int().nullish(),
  guided_json: z.unknown().optional(),
  guided_regex: z.unknown().optional(),
  guided_choice: z.unknown().optional(),
  guided_grammar: z.unknown().optional(),
  guided_whitespace_pattern: z.unknown().optional(),
  guided_decoding_backend: z.unknown().optional(),
  structured_outputs: z.record(z.string(), z.unknown()).nullish(), // structured-fields.ts
};

export const completionRequestSchema = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(int()), z.array(z.string()), z.array(z.array(int()))]),
  logprobs: int().nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  add_special_tokens: z.boolean().nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const chatMessage = z.looseObject({
  role: z.string(),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
});

export const chatRequestSchema = z.object({
  ...common,
  messages: z.array(chatMessage).min(1),
  max_completion_tokens: int().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int().nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  add_generation_prompt: z.boolean().nullish(),
  continue_final_message: z.boolean().nullish(),
  add_special_tokens: z.boolean().nullish(),
  echo: z.boolean().nullish(),
  tools: z.array(z.unknown()).nullish(),
  tool_choice: z.unknown().optional(), // server/tools/tool-plan.ts
  parallel_tool_calls: z.boolean().nullish(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type WireChatMessage = z.infer<typeof chatMessage>;

/** POST /tokenize takes either a prompt or chat messages (chosen by the presence of `messages`). */
export const tokenizePromptSchema = z.object({
  model: z.string().nullish(),
  prompt: z.string(),
  add_special_tokens: z.boolean().nullish(),
  return_token_strs: z.boolean().nullish(),
});
export const tokenizeChatSchema = z.object({
  model: z.string().nullish(),
  messages: z.array(chatMessage).min(1),
  add_generation_prompt: z.boolean().nullish(),
  add_special_tokens: z.boolean().nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  return_token_strs: z.boolean().nullish(),
});

export const detokenizeRequestSchema = z.object({
  model: z.string().nullish(),
  tokens: z.array(int()),
});
