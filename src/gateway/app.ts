// The gateway's HTTP skeleton shared by `pdserve proxy` and `pdserve router`: a Fastify app with the
// listener limits, API keys on /v1/* and /tokenize|/detokenize (checked before the body is read),
// bytes-in bodies, OpenAI-style errors, and POST /v1/completions, /v1/chat/completions, /v1/responses (generate.ts).
// Callers add their own read-only routes, then listen.
import Fastify, { type FastifyInstance } from 'fastify';
import { openAiErrorBody } from '../util/errors.js';
import { handleGenerate } from './generate.js';
import type { ProxyState } from './state.js';
import { ApiKeyGuard } from '../security/api-key.js';
import { applyListenerLimits, checkListenerLimits, fastifyListenerOptions } from '../util/http-listener.js';

export function createGatewayApp(st: ProxyState, extraGuarded: (url: string) => boolean = () => false): FastifyInstance {
  const config = st.config;
  const listener = checkListenerLimits({ ...config.listener, bodyLimitBytes: config.bodyLimitBytes });
  const app = Fastify({ logger: false, forceCloseConnections: true, ...fastifyListenerOptions(listener) });
  applyListenerLimits(app.server, listener);
  // clients' API keys on /v1/* (vLLM's rule) and the tokenizer routes (they cost CPU, as on the engines)
  const guard = new ApiKeyGuard(config.apiKeys);
  const guarded = (url: string) => url.startsWith('/v1/') || /^\/(tokenize|detokenize)(\?|$)/.test(url) || extraGuarded(url);
  app.addHook('onRequest', async (req, reply) => {
    if (!guard.enabled || !guarded(req.url)) return;
    if (!guard.admits(req.headers.authorization)) {
      return reply.code(401).send(openAiErrorBody(401, 'Unauthorized: a valid API key is required (Authorization: Bearer KEY)'));
    }
  });
  // Engines accept JSON whatever the content-type says (curl -d sends form-urlencoded): take bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    void reply.code(status).send(openAiErrorBody(status, err.message));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(openAiErrorBody(404, `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  for (const path of ['/v1/completions', '/v1/chat/completions', '/v1/responses']) {
    app.post(path, async (req, reply) => {
      reply.hijack();
      await handleGenerate(st, path, req.raw, req.body, reply.raw);
    });
  }
  return app;
}

/** run(): one round of health checks over both pools (and the kv-server probe); concurrent calls share
 *  it. settle(): waits for the round in progress, if any (shutdown). */
export function healthChecker(st: ProxyState, onKvChange: (healthy: boolean) => void): { run: () => Promise<void>; settle: () => Promise<void> } {
  let checking: Promise<void> | null = null;
  const settle = async () => {
    await checking?.catch(() => undefined);
  };
  const run = () => {
    if (!checking) {
      const timeout = Math.max(500, Math.min(st.config.healthIntervalMs || 2000, 5000));
      const kvCheck = async () => {
        const kv = st.kvServer;
        if (!kv || !(await kv.check(timeout))) return;
        onKvChange(kv.healthy);
      };
      checking = Promise.all([st.prefillers.checkAll(timeout), st.decoders.checkAll(timeout), kvCheck()])
        .then(() => undefined)
        .finally(() => {
          checking = null;
        });
    }
    return checking;
  };
  return { run, settle };
}

/** "http://host:port" as clients should use it (a wildcard host shown as loopback). */
export function shownUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}
