// What every route handler shares: the engine, the served names and limits, metrics, in-flight ids.
import type { KvTimingStore } from './kv-timing.js';
import type { ZodType } from 'zod';
import type { EngineClient } from '../engine/protocol.js';
import type { SamplingDefaults } from '../models/generation-config.js';
import type { PromptEncoder } from '../tokenizer/prompt-encoder.js';
import { PdsError } from '../util/errors.js';
import { zodToPdsError } from './http-errors.js';
import type { ServerMetrics } from './metrics.js';
import type { RequestIds } from './request-context.js';
import type { RequestLimits } from './request-limits.js';
import type { GrammarService } from '../structured/grammar-service.js';
import type { ToolSettings } from './tools/tool-plan.js';

export interface ServerContext {
  engine: EngineClient;
  modelNames: string[]; // accepted `model` values; [0] is reported in responses
  maxModelLen: number;
  maxLogprobs: number;
  samplingDefaults: SamplingDefaults; // the model's generation-config defaults ({} = the server's own)
  metrics: ServerMetrics;
  ids: RequestIds;
  kvTiming: KvTimingStore; // decoders' per-request KV load timing for the router (kv-timing.ts)
  encoder: PromptEncoder; // request text -> token ids (off the event loop unless configured inline)
  limits: RequestLimits; // checked before the encoder runs
  grammar: GrammarService | null; // structured output (null: requests that ask for it get a 400)
  tools: ToolSettings; // --enable-auto-tool-choice, --tool-call-parser
}

export function servedName(ctx: ServerContext): string {
  return ctx.modelNames[0]!;
}

/** vLLM: an unknown model is a 404 NotFoundError; an omitted one means the served model. */
export function checkModel(ctx: ServerContext, model: string | null | undefined): void {
  if (model != null && !ctx.modelNames.includes(model)) {
    throw new PdsError('PDS_ERR_MODEL_NOT_FOUND', `The model \`${model}\` does not exist.`, 'model');
  }
}

export function parseBody<T>(schema: ZodType<T>, body: unknown): T {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new PdsError('PDS_ERR_BAD_REQUEST', 'request body must be a JSON object');
  }
  const r = schema.safeParse(body);
  if (!r.success) throw zodToPdsError(r.error);
  return r.data;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
