// The OpenAI-compatible HTTP server (vLLM's routes and extensions) over an EngineClient.
// JSON stops here: handlers validate with zod, build typed GenerateRequests, and iterate engine.generate
// asynchronously. Every error becomes {"error":{message,type,param,code}} with its status.
// Hostile input is bounded before it costs anything: listener limits (http-listener.ts), a JSON depth
// check, API keys and internal signatures (edge-auth.ts), request limits (request-limits.ts), then the
// PromptEncoder (a worker pool in `pdserve serve`) so tokenization never runs on the event loop.
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { EngineClient } from '../engine/protocol.js';
import type { SamplingDefaults } from '../models/generation-config.js';
import { getLogger } from '../util/logger.js';
import { applyListenerLimits, checkListenerLimits, defaultListenerLimits, fastifyListenerOptions, type ListenerLimits } from '../util/http-listener.js';
import { JsonBodyError, parseJsonBody } from '../util/json-guard.js';
import { InlineEncoder, type PromptEncoder } from '../tokenizer/prompt-encoder.js';
import { keepRawBody, registerEdgeAuth } from './edge-auth.js';
import { defaultBodyLimit, defaultRequestLimits, type RequestLimits } from './request-limits.js';
import { PdsError, openAiErrorBody } from '../util/errors.js';
import { handleChat } from './chat.js';
import { handleCompletion } from './completions.js';
import { handleResponses } from './responses.js';
import { ClientGone } from './engine-run.js';
import { toHttpError } from './http-errors.js';
import { packageVersion, registerInfoRoutes } from './info-routes.js';
import { ServerMetrics } from './metrics.js';
import { RequestIds } from './request-context.js';
import type { ServerContext } from './server-context.js';
import { KvTimingStore, registerKvTimingRoute } from './kv-timing.js';
import type { GrammarService } from '../structured/grammar-service.js';
import type { ToolSettings } from './tools/tool-plan.js';

export interface ApiServerOptions {
  servedModelName?: string | string[]; // default engine.model.name; the first is reported in responses
  maxModelLen: number;
  maxLogprobs?: number; // default 20 (vLLM's --max-logprobs)
  samplingDefaults?: SamplingDefaults; // from --generation-config (default none)
  bodyLimit?: number; // bytes, default defaultBodyLimit(maxModelLen) (request-limits.ts)
  apiKeys?: string[]; // users' keys for /v1/* (none = open)
  internalKey?: Buffer | null; // the internal secret (peers, proxy); null = no internal callers
  encoder?: PromptEncoder; // default: inline on the event loop (tests); `serve` passes a TokenizerPool
  limits?: Partial<RequestLimits>;
  listener?: Partial<Omit<ListenerLimits, 'bodyLimitBytes'>>;
  accessLog?: boolean; // uvicorn-style line per response (default false)
  version?: string; // reported by GET /version (default: package.json's)
  grammar?: GrammarService | null; // structured output / tool choice (default none: such requests get a 400)
  tools?: ToolSettings; // default: auto tool choice off, no parser
}

export interface ApiServer {
  /** Resolves with the port actually bound (pass 0 for a random free one). */
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
  readonly app: FastifyInstance;
  /** its /metrics registry (serve adds process-level series: KV events) */
  readonly metrics: ServerMetrics;
}

const log = getLogger('api_server');

/** true when the body holds only JSON whitespace (or nothing). */
function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

export function createApiServer(engine: EngineClient, opts: ApiServerOptions): ApiServer {
  const names = opts.servedModelName === undefined ? [engine.model.name]
    : Array.isArray(opts.servedModelName) ? opts.servedModelName : [opts.servedModelName];
  if (!names.length) throw new Error('servedModelName must not be empty');
  const ctx: ServerContext = {
    engine,
    modelNames: names,
    maxModelLen: opts.maxModelLen,
    maxLogprobs: opts.maxLogprobs ?? 20,
    samplingDefaults: opts.samplingDefaults ?? {},
    metrics: new ServerMetrics(engine, names[0]!, opts.grammar ?? null),
    ids: new RequestIds(),
    kvTiming: new KvTimingStore(),
    encoder: opts.encoder ?? new InlineEncoder(engine.tokenizer),
    limits: { ...defaultRequestLimits, ...opts.limits },
    grammar: opts.grammar ?? null,
    tools: opts.tools ?? { enableAutoToolChoice: false, toolCallParser: null },
  };
  const listener = checkListenerLimits({
    ...defaultListenerLimits,
    ...opts.listener,
    bodyLimitBytes: opts.bodyLimit ?? defaultBodyLimit(opts.maxModelLen, ctx.limits),
  });
  const app = Fastify({ logger: false, forceCloseConnections: true, ...fastifyListenerOptions(listener) });
  applyListenerLimits(app.server, listener);

  // Every body is read as JSON whatever its content type says (curl -d, text/plain), depth-checked first;
  // the raw text is kept for internal-signature checks.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    const raw = body as Buffer;
    keepRawBody(req, raw);
    if (isBlank(raw)) return done(null, undefined);
    try {
      done(null, parseJsonBody(raw));
    } catch (e) {
      done(Object.assign(new Error((e as Error).message), { statusCode: e instanceof JsonBodyError ? 400 : 500 }), undefined);
    }
  });
  registerEdgeAuth(app, { apiKeys: opts.apiKeys ?? [], internalKey: opts.internalKey ?? null });
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ClientGone) return reply.code(499).send();
    const { status, body } = toHttpError(err);
    if (err instanceof PdsError) {
      if (status >= 500) log.warn(`${req.method} ${req.url}: ${err.code}: ${err.message}`);
    } else if (status >= 500) log.error(`${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(openAiErrorBody(404, `Route ${req.method} ${req.url} not found`));
  });
  if (opts.accessLog) {
    app.addHook('onResponse', async (req, reply) => {
      log.info(`${req.ip} - "${req.method} ${req.url} HTTP/${req.raw.httpVersion}" ${reply.statusCode}`);
    });
  }

  app.post('/v1/completions', (req, reply) => handleCompletion(ctx, req, reply));
  app.post('/v1/chat/completions', (req, reply) => handleChat(ctx, req, reply));
  app.post('/v1/responses', (req, reply) => handleResponses(ctx, req, reply));
  registerInfoRoutes(app, ctx, opts.version ?? packageVersion());
  registerKvTimingRoute(app, ctx.kvTiming);

  return {
    app,
    metrics: ctx.metrics,
    async listen(port: number, host = '127.0.0.1') {
      await app.listen({ port, host });
      return (app.server.address() as AddressInfo).port;
    },
    async close() {
      await app.close();
    },
  };
}
