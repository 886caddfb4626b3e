// `pdserve proxy` over the gateway core (src/gateway): round-robin pools, /health, /healthcheck, its
// own /metrics, the info relay, background health checks, periodic stats print.
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { getLogger } from '../util/logger.js';
import { normalizeProxyConfig, type ProxyConfig } from '../gateway/config.js';
import { registerInfoRelay } from '../gateway/info-relay.js';
import { ProxyMetrics } from '../gateway/metrics.js';
import type { ProxyState } from '../gateway/state.js';
import { StatsWindow } from '../gateway/stats-window.js';
import { UpstreamSet } from '../gateway/upstream-set.js';
import { Heartbeat } from '../gateway/heartbeat.js';
import { KvServerProbe } from '../gateway/kv-probe.js';
import { createGatewayApp, healthChecker, shownUrl } from '../gateway/app.js';

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
  const app = createGatewayApp(st);

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

  const kv = st.kvServer;
  const health = healthChecker(st, (healthy) => {
    if (healthy) log.info(`kv-server ${kv!.address} is reachable again`);
    else log.warn(`kv-server ${kv!.address} is down (${kv!.lastError}): decoders compute prompts themselves`);
  });
  const checkHealth = health.run;
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
  const url = shownUrl(config.host, port);
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
      await health.settle();
      await Promise.all([st.prefillers.closeAll(), st.decoders.closeAll()]);
    })();
    return closed;
  };
  return { url, port, state: st, app, checkHealth, close };
}
