// GET /v1/models, /health (and /ping), /version, /metrics; POST /tokenize, /detokenize (vLLM's shapes).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { openAiErrorBody } from '../util/errors.js';
import { badRequest } from './http-errors.js';
import { logprobsTokenText } from './logprobs.js';
import { checkTokenIds, encodeChatPrompt } from './prompts.js';
import { checkChat, checkCompletionPrompts } from './request-limits.js';
import { detokenizeRequestSchema, tokenizeChatSchema, tokenizePromptSchema } from './request-schemas.js';
import { checkModel, nowSeconds, parseBody, type ServerContext } from './server-context.js';

/** The version in the nearest package.json above this file ('unknown' if none). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const v = JSON.parse(readFileSync(p, 'utf8')).version;
        if (typeof v === 'string') return v;
      } catch { /* keep looking */ }
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

export function registerInfoRoutes(app: FastifyInstance, ctx: ServerContext, version: string): void {
  const created = nowSeconds();
  const m = ctx.engine.model;
  const card = (id: string) => ({
    id,
    object: 'model',
    created,
    owned_by: 'pdserve',
    root: id, // the served name: never a path on this machine's disk
    parent: null,
    max_model_len: ctx.maxModelLen,
    description: m.dummyWeights ? `[random dummy weights: output is meaningless] ${m.description}` : m.description,
    dummy_weights: m.dummyWeights,
    permission: [],
  });
  app.get('/v1/models', async () => ({ object: 'list', data: ctx.modelNames.map(card) }));
  // OpenAI's retrieve-model; the id may contain slashes ("Qwen/Qwen3-0.6B", a path), so take the rest of the URL
  app.get('/v1/models/*', async (req, reply) => {
    const id = decodeURIComponent((req.params as { '*': string })['*']);
    if (!ctx.modelNames.includes(id)) {
      return reply.code(404).send(openAiErrorBody(404, `The model \`${id}\` does not exist.`, 'model', 'model_not_found'));
    }
    return card(id);
  });

  const health = async (_req: unknown, reply: FastifyReply) => {
    if (ctx.engine.isHealthy()) return reply.code(200).send();
    return reply.code(503).send(openAiErrorBody(503, 'engine is not healthy'));
  };
  app.get('/health', health);
  app.get('/ping', health); // vLLM's SageMaker-style alias
  app.post('/ping', health);

  app.get('/version', async () => ({ version }));

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', ctx.metrics.contentType);
    return ctx.metrics.metrics();
  });

  app.post('/tokenize', async (req) => {
    const tok = ctx.engine.tokenizer;
    const raw = req.body as Record<string, unknown> | undefined;
    let tokens: number[];
    let strs: boolean;
    if (raw && typeof raw === 'object' && 'messages' in raw) {
      const body = parseBody(tokenizeChatSchema, raw);
      checkModel(ctx, body.model);
      checkChat(body, ctx.maxModelLen, ctx.limits);
      tokens = (await encodeChatPrompt(body.messages, ctx.encoder, tok, {
        addGenerationPrompt: body.add_generation_prompt ?? true,
        addSpecialTokens: body.add_special_tokens ?? false,
        ...(body.chat_template_kwargs ? { chatTemplateKwargs: body.chat_template_kwargs } : {}),
      })).tokenIds;
      strs = body.return_token_strs ?? false;
    } else {
      const body = parseBody(tokenizePromptSchema, raw);
      checkModel(ctx, body.model);
      checkCompletionPrompts(body.prompt, ctx.maxModelLen, ctx.limits);
      tokens = (await ctx.encoder.encode([body.prompt], body.add_special_tokens ?? true))[0]!;
      strs = body.return_token_strs ?? false;
    }
    return {
      count: tokens.length,
      max_model_len: ctx.maxModelLen,
      tokens,
      ...(strs ? { token_strs: tokens.map((t) => logprobsTokenText(tok, t)) } : {}),
    };
  });

  app.post('/detokenize', async (req) => {
    const body = parseBody(detokenizeRequestSchema, req.body);
    checkModel(ctx, body.model);
    const tok = ctx.engine.tokenizer;
    if (body.tokens.length > ctx.maxModelLen) throw badRequest(`at most max_model_len (${ctx.maxModelLen}) tokens can be detokenized at once`, 'tokens');
    if (body.tokens.length) checkTokenIds(body.tokens, tok.vocabSize, 'tokens');
    return { prompt: tok.decode(body.tokens, { skipSpecialTokens: false }) };
  });
}
