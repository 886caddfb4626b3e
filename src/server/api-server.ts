// The OpenAI-compatible HTTP server (vLLM's routes and extensions) over an EngineClient.
// JSON stops here: handlers validate with zod, build typed GenerateRequests, and iterate engine.generate
// asynchronously. Every error becomes {"error":{message,type,param,code}} with its status.
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { EngineClient } from '../engine/protocol.js';
import type { SamplingDefaults } from '../models/generation-config.js';
import { getLogger } from '../util/logger.js';
import { PdsError, openAiErrorBody } from '../util/errors.js';
import { handleChat } from './chat.js';
import { handleCompletion } from './completions.js';
import { ClientGone } from './engine-run.js';
import { toHttpError } from './http-errors.js';
import { packageVersion, registerInfoRoutes } from './info-routes.js';
import { ServerMetrics } from './metrics.js';
import { RequestIds } from './request-context.js';
import type { ServerContext } from './server-context.js';

export interface ApiServerOptions {
  servedModelName?: string | string[]; // default engine.model.name; the first is reported in responses
  maxModelLen: number;
  maxLogprobs?: number; // default 20 (vLLM's --max-logprobs)
  samplingDefaults?: SamplingDefaults; // from --generation-config (default none)
  bodyLimit?: number; // bytes, default 64 MiB
  accessLog?: boolean; // uvicorn-style line per response (default false)
  version?: string; // reported by GET /version (default: package.json's)
}

export interface ApiServer {
  /** Resolves with the port actually bound (pass 0 for a random free one). */
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
  readonly app: FastifyInstance;
}

const log = getLogger('api_server');

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
    metrics: new ServerMetrics(engine, names[0]!),
    ids: new RequestIds(),
  };
  const app = Fastify({ logger: false, bodyLimit: opts.bodyLimit ?? 64 * 1024 * 1024, forceCloseConnections: true });

  // Bodies with no or another content type (curl -d, text/plain) are read as JSON too.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (!text.trim()) return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(Object.assign(new Error(`invalid JSON body: ${(e as Error).message}`), { statusCode: 400 }), undefined);
    }
  });
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
  registerInfoRoutes(app, ctx, opts.version ?? packageVersion());

  return {
    app,
    async listen(port: number, host = '0.0.0.0') {
      await app.listen({ port, host });
      return (app.server.address() as AddressInfo).port;
    },
    async close() {
      await app.close();
    },
  };
}
