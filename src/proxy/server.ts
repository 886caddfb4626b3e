// The proxy's HTTP server: routes, background health checks, periodic stats print.
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { openAiErrorBody } from '../util/errors.js';
import { getLogger } from '../util/logger.js';
import { normalizeProxyConfig, type ProxyConfig } from './config.js';
import { handleGenerate } from './generate.js';
import { registerInfoRelay } from './info-relay.js';
import { ProxyMetrics } from './metrics.js';
import type { ProxyState } from './state.js';
import { StatsWindow } from './stats-window.js';
import { UpstreamSet } from './upstream-set.js';
import { Heartbeat } from './heartbeat.js';
import { KvServerProbe } from './kv-probe.js';
import { ApiKeyGuard } from '../security/api-key.js';
import { applyListenerLimits, checkListenerLimits, fastifyListenerOptions } from '../util/http-listener.js';

const log = getLogger('proxy');

export interface RunningProxy {
  url: string; // "http://127.0.0.1:PORT"
  port: number;
  state: ProxyState;
  app: FastifyInstance;
  /** Runs one round of health checks now (tests; the loop runs them every healthIntervalMs). */
  checkHealth(): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(input: ProxyConfig, statsSink: (text: string) => void = (t) => process.stdout.write(t + '\n')): Promise<RunningProxy> {
  const config = normalizeProxyConfig(input);
  const upOpts = { connectTimeoutMs: config.connectTimeoutMs };
  const st: ProxyState = {
    config,
    prefillers: new UpstreamSet('prefill', config.prefillers, upOpts),
    decoders: new UpstreamSet('decode', config.decoders, upOpts),
    metrics: new ProxyMetrics(),
    stats: new StatsWindow(),
    inflight: 0,
    aborters: new Set(),
    kvServer: config.kvServer ? new KvServerProbe(config.kvServer) : null,
  };
  if (config.prefillHeartbeatMs > 0) {
    // a probe may take up to 2 intervals (at least 1 s) on a loaded machine before it counts as missed
    const hbTimeout = Math.max(1000, 2 * config.prefillHeartbeatMs);
    for (const u of st.prefillers.all) u.heartbeat = new Heartbeat(u, config.prefillHeartbeatMs, hbTimeout);
  }
  const listener = checkListenerLimits({ ...config.listener, bodyLimitBytes: config.bodyLimitBytes });
  const app = Fastify({ logger: false, forceCloseConnections: true, ...fastifyListenerOptions(listener) });
  applyListenerLimits(app.server, listener);
  // clients' API keys on /v1/* (vLLM's rule) and the tokenizer routes (they cost CPU, as on the engines);
  // checked before the body is read
  const guard = new ApiKeyGuard(config.apiKeys);
  const guarded = (url: string) => url.startsWith('/v1/') || /^\/(tokenize|detokenize)(\?|$)/.test(url);
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

  for (const path of ['/v1/completions', '/v1/chat/completions']) {
    app.post(path, async (req, reply) => {
      reply.hijack();
      await handleGenerate(st, path, req.raw, req.body, reply.raw);
    });
  }

  registerInfoRelay(app, st);

  const instances = (set: UpstreamSet) =>
    set.all.map((u) => ({ url: u.origin, healthy: u.healthy, inflight: u.inflight, last_error: u.lastError }));
  // 503 'unhealthy': no decoder, nothing can be served. 200 'degraded': it serves, but an engine or the
  // kv-server is down (requests fall back: other engines, or decoders computing prompts themselves).
  app.get('/health', async (_req, reply) => {
    const ok = st.decoders.healthyCount() > 0;
    const whole = st.decoders.healthyCount() === st.decoders.size && st.prefillers.healthyCount() === st.prefillers.size && (st.kvServer?.healthy ?? true);
    return reply.code(ok ? 200 : 503).send({
      status: !ok ? 'unhealthy' : whole ? 'ok' : 'degraded',
      prefill_instances: instances(st.prefillers),
      decode_instances: instances(st.decoders),
      kv_server: st.kvServer?.toJSON() ?? null,
    });
  });
  app.get('/healthcheck', async () => ({
    status: st.decoders.healthyCount() > 0 ? 'ok' : 'unhealthy',
    prefill_instances: st.prefillers.size,
    decode_instances: st.decoders.size,
    healthy_prefill_instances: st.prefillers.healthyCount(),
    healthy_decode_instances: st.decoders.healthyCount(),
  }));
  app.get('/metrics', async (_req, reply) => {
    for (const set of [st.prefillers, st.decoders]) {
      for (const u of set.all) st.metrics.upstreamHealthy.set({ role: set.role, upstream: u.origin }, u.healthy ? 1 : 0);
    }
    const text = await st.metrics.registry.metrics();
    return reply.header('content-type', st.metrics.registry.contentType).send(text);
  });

  let checking: Promise<void> | null = null;
  const checkHealth = () => {
    if (!checking) {
      const timeout = Math.max(500, Math.min(config.healthIntervalMs || 2000, 5000));
      const kvCheck = async () => {
        const kv = st.kvServer;
        if (!kv || !(await kv.check(timeout))) return;
        if (kv.healthy) log.info(`kv-server ${kv.address} is reachable again`);
        else log.warn(`kv-server ${kv.address} is down (${kv.lastError}): decoders compute prompts themselves`);
      };
      checking = Promise.all([st.prefillers.checkAll(timeout), st.decoders.checkAll(timeout), kvCheck()])
        .then(() => undefined)
        .finally(() => {
          checking = null;
        });
    }
    return checking;
  };
  const timers: NodeJS.Timeout[] = [];
  if (config.healthIntervalMs > 0) {
    void checkHealth();
    timers.push(setInterval(() => void checkHealth(), config.healthIntervalMs).unref());
  }
  if (config.statsIntervalMs > 0) {
    timers.push(
      setInterval(() => {
        const text = st.stats.drain();
        if (text) statsSink(text);
      }, config.statsIntervalMs).unref(),
    );
  }

  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  log.info(
    `proxy on ${url}: ${st.prefillers.size} prefill instance(s) [${config.prefillers.join(', ')}], ` +
      `${st.decoders.size} decode instance(s) [${config.decoders.join(', ')}]`,
  );

  let closed: Promise<void> | null = null;
  const close = () => {
    closed ??= (async () => {
      for (const t of timers) clearInterval(t);
      for (const a of st.aborters) a.abort(new Error('proxy shutting down'));
      await app.close();
      await checking?.catch(() => undefined);
      await Promise.all([st.prefillers.closeAll(), st.decoders.closeAll()]);
    })();
    return closed;
  };
  return { url, port, state: st, app, checkHealth, close };
}
