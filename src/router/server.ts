// `pdserve router`: vllm_router's endpoints over the gateway core (src/gateway). Pools and policies
// from config.ts poolsOf(); background loops: health checks (ejection / re-admission), engine stats
// scrapes, --log-stats prints. Every request's record feeds request-stats.ts.
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { getLogger } from '../util/logger.js';
import { PdsError } from '../util/errors.js';
import { normalizeProxyConfig } from '../gateway/config.js';
import { ProxyMetrics } from '../gateway/metrics.js';
import type { ProxyState } from '../gateway/state.js';
import { StatsWindow } from '../gateway/stats-window.js';
import { UpstreamSet } from '../gateway/upstream-set.js';
import type { Upstream } from '../gateway/upstream.js';
import { Heartbeat } from '../gateway/heartbeat.js';
import { createGatewayApp, healthChecker, shownUrl } from '../gateway/app.js';
import { createPolicy } from '../gateway/policies/registry.js';
import { upstreamCredentials } from '../gateway/intake.js';
import { signRequest } from '../security/request-signing.js';
import { KvTimingPoller } from './kv-timing-poll.js';
import { normalizeRouterConfig, poolsOf, type Backend, type RouterConfig } from './config.js';
import { RequestStats } from './request-stats.js';
import { scrapeEngine } from './engine-stats.js';
import { routerMetricsText } from './metrics-text.js';
import { statsReport } from './log-stats.js';
import { prepareRoute } from './prepare.js';
import { Admission } from '../gateway/admission.js';
import { CircuitBreaker } from '../gateway/circuit-breaker.js';
import type { KvEventsFeed } from './kv-events-feed.js';
import { KvAwarePolicy } from '../gateway/policies/kv-aware.js';
import { applyDiscovered } from './discovery-sync.js';
import { isDashboardDataUrl, registerDashboard } from './dashboard-routes.js';
import { ConditionalDisagg, conditionalOn } from './conditional-disagg.js';

const log = getLogger('router');
export const ROUTER_VERSION = '0.1.0';

export interface RunningRouter {
  url: string;
  port: number;
  state: ProxyState;
  stats: RequestStats;
  app: FastifyInstance;
  checkHealth(): Promise<void>;
  scrapeStats(): Promise<void>;
  close(): Promise<void>;
  /** the kvaware pools' KV-event feed (null when no pool routes by KV events) */
  kvFeed: KvEventsFeed | null;
  /** Dynamic config: applies a new config (backends, models, labels, routing logic, policies, session key)
   *  to the running router, or throws (PdsError) and changes nothing. Listener, limits, timeouts and
   *  service discovery stay as started. */
  reconfigure(next: RouterConfig): void;
}

export async function startRouter(input: RouterConfig, statsSink: (text: string) => void = (t) => process.stdout.write(t + '\n')): Promise<RunningRouter> {
  const rc = normalizeRouterConfig(input);
  const pools = poolsOf(rc);
  const config = normalizeProxyConfig({ ...rc.gateway, prefillers: pools.prefill.map((b) => b.url), decoders: pools.decode.map((b) => b.url) }, rc.serviceDiscovery === 'k8s');
  const upOpts = { connectTimeoutMs: config.connectTimeoutMs };
  // zeromq and the Kubernetes client are loaded only when used (they add to every CLI start otherwise)
  const kvFeed = [pools.prefillPolicy, pools.decodePolicy].includes('kvaware') ? new (await import('./kv-events-feed.js')).KvEventsFeed(rc) : null;
  const policyOpts = { sessionKey: rc.sessionKey ?? undefined, ...(kvFeed ? { kvIndex: kvFeed.index } : {}) };
  const st: ProxyState = {
    config,
    prefillers: new UpstreamSet('prefill', config.prefillers, upOpts, createPolicy(pools.prefillPolicy, policyOpts)),
    decoders: new UpstreamSet('decode', config.decoders, upOpts, createPolicy(pools.decodePolicy, policyOpts)),
    metrics: new ProxyMetrics(),
    stats: new StatsWindow(),
    inflight: 0,
    aborters: new Set(),
    kvServer: null,
  };
  const meta = (set: UpstreamSet, bs: Backend[]) => {
    for (const u of set.all) {
      const b = bs.find((x) => x.url === u.origin)!;
      u.label = b.label;
      if (b.model) u.models = [b.model];
    }
  };
  if (config.maxInflight > 0) st.admission = new Admission(config.maxInflight, rc.maxQueue, rc.queueTimeoutMs);
  st.prefillRetryBackoffMs = rc.prefillRetryBackoffMs;
  for (const u of [...st.prefillers.all, ...st.decoders.all]) u.breaker = new CircuitBreaker(rc.breakerFailures, rc.breakerCooldownMs);
  meta(st.prefillers, pools.prefill);
  meta(st.decoders, pools.decode);
  for (const set of [st.prefillers, st.decoders]) if (set.policy instanceof KvAwarePolicy) kvFeed?.policies.push(set.policy);
  const kvSync = () => kvFeed?.sync([...st.prefillers.all, ...st.decoders.all]);
  kvSync();
  if (config.prefillHeartbeatMs > 0) {
    const hbTimeout = Math.max(1000, 2 * config.prefillHeartbeatMs);
    for (const u of st.prefillers.all) u.heartbeat = new Heartbeat(u, config.prefillHeartbeatMs, hbTimeout);
  }
  const initUpstream = (u: Upstream) => {
    u.breaker = new CircuitBreaker(rc.breakerFailures, rc.breakerCooldownMs);
    if (u.role === 'prefill' && config.prefillHeartbeatMs > 0) u.heartbeat = new Heartbeat(u, config.prefillHeartbeatMs, Math.max(1000, 2 * config.prefillHeartbeatMs));
  };
  const discovery = rc.serviceDiscovery !== 'k8s' ? null : new (await import('./k8s-discovery.js')).K8sDiscovery(
    { namespace: rc.k8sNamespace, labelSelector: rc.k8sLabelSelector, port: rc.k8sPort, modelLabelKey: rc.k8sModelLabelKey },
    (bs) => {
      applyDiscovered(st, rc, bs, initUpstream);
      kvSync();
    },
  );
  await discovery?.start().catch((e) => log.warn(`k8s discovery: first pod list failed: ${(e as Error).message} (retrying)`));
  const stats = new RequestStats(rc.requestStatsWindowMs);
  const engines = () => [
    ...st.prefillers.all.map((up) => ({ up, role: 'prefill' })),
    ...st.decoders.all.map((up) => ({ up, role: 'decode' })),
  ];
  const modelsKnown = (model: string) => engines().some(({ up }) => up.models.includes(model));
  const kvTiming = config.internalKey
    ? new KvTimingPoller(config.internalKey, (o) => st.decoders.all.find((u) => u.origin === o), () => upstreamCredentials(config))
    : null;
  const conditional = conditionalOn(rc) ? new ConditionalDisagg(rc, st.metrics.registry) : null;
  st.hooks = {
    prepare: (req, body, requestId) => prepareRoute(st, rc, req, body, requestId, modelsKnown, conditional),
    onStart: (r) => stats.start(r),
    onDone: (r) => {
      stats.finish(r);
      kvTiming?.add(r);
    },
  };
  const getHeaders = (path: string): Record<string, string> => ({
    ...upstreamCredentials(config),
    ...(config.internalKey ? signRequest(config.internalKey, 'GET', path, null) : {}),
  });

  const app = createGatewayApp(st, isDashboardDataUrl);
  registerDashboard(app, () => ({
    engines: engines(),
    stats,
    routingLogic: rc.routingLogic,
    prefillPolicy: st.prefillers.policy.name,
    decodePolicy: st.decoders.policy.name,
    ...(kvFeed ? { kvBlocks: (o: string) => kvFeed.stats()[o]?.blocks ?? null } : {}),
    ...(conditional ? { disaggDecisions: conditional.tally } : {}),
  }));
  app.get('/health', async (_req, reply) => {
    const ok = st.decoders.healthyCount() > 0;
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'healthy' : 'unhealthy', healthy_engines: engines().filter((e) => e.up.healthy).length, engines: engines().length });
  });
  app.get('/version', async () => ({ version: ROUTER_VERSION }));
  app.get('/engines', async () =>
    engines().map(({ up, role }) => ({
      url: up.origin,
      role,
      model_names: up.models,
      model_label: up.label,
      healthy: up.healthy,
      breaker: up.breaker?.state ?? 'closed',
      last_error: up.lastError,
      inflight: up.inflight,
      engine_stats: up.engineStats,
      request_stats: stats.of(up.origin),
      ...(kvFeed ? { kv_events: kvFeed.stats()[up.origin] ?? null } : {}),
    })),
  );
  app.get('/v1/models', async (_req, reply) => {
    const seen = new Map<string, unknown>();
    await Promise.all(
      engines()
        .filter((e) => e.up.healthy)
        .map(async ({ up }) => {
          try {
            const res = await up.pool.request({ path: '/v1/models', method: 'GET', headers: getHeaders('/v1/models'), headersTimeout: 3000, bodyTimeout: 3000 });
            const j = (await res.body.json()) as { data?: { id?: string }[] };
            if (res.statusCode !== 200 || !Array.isArray(j?.data)) return;
            for (const m of j.data) if (typeof m?.id === 'string' && !seen.has(m.id)) seen.set(m.id, m);
          } catch {
            /* an engine that cannot answer adds nothing */
          }
        }),
    );
    for (const { up } of engines()) {
      for (const id of up.models) if (!seen.has(id)) seen.set(id, { id, object: 'model', created: 0, owned_by: 'pdserve' });
    }
    return reply.send({ object: 'list', data: [...seen.values()] });
  });
  app.get('/metrics', async (_req, reply) => {
    const own = await st.metrics.registry.metrics();
    const breakers = engines().map(({ up }) => `pdserve_router_breaker_open{server="${up.origin}"} ${up.breaker?.state === 'open' ? 1 : 0}\npdserve_router_breaker_opened_total{server="${up.origin}"} ${up.breaker?.openedTotal ?? 0}`);
    const admission = st.admission ? `pdserve_router_queued_requests ${st.admission.waiting}\n` : '';
    return reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(routerMetricsText(engines().map((e) => e.up), stats) + '# TYPE pdserve_router_breaker_open gauge\n# TYPE pdserve_router_breaker_opened_total counter\n' + breakers.join('\n') + '\n' + admission + own);
  });

  const health = healthChecker(st, () => undefined);
  let scraping: Promise<void> | null = null;
  const scrapeStats = () => {
    scraping ??= Promise.all(
      engines().map(async ({ up }) => {
        await scrapeEngine(up, 3000, getHeaders('/metrics'));
        if (!up.models.length) await learnModels(up, getHeaders('/v1/models'));
      }),
    )
      .then(() => undefined)
      .finally(() => {
        scraping = null;
      });
    return scraping;
  };
  const timers: NodeJS.Timeout[] = [];
  if (config.healthIntervalMs > 0) {
    void health.run();
    timers.push(setInterval(() => void health.run(), config.healthIntervalMs).unref());
  }
  void scrapeStats();
  if (kvFeed) timers.push(setInterval(kvSync, 500).unref());
  timers.push(setInterval(() => void scrapeStats(), rc.engineStatsIntervalMs).unref());
  if (rc.logStats) timers.push(setInterval(() => statsSink(statsReport(engines(), stats)), rc.logStatsIntervalMs).unref());

  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  const url = shownUrl(config.host, port);
  log.info(
    `router on ${url} (--routing-logic ${rc.routingLogic}; prefill policy ${st.prefillers.policy.name}, decode policy ${st.decoders.policy.name}): ` +
      `${st.prefillers.size} prefill [${config.prefillers.join(', ')}], ${st.decoders.size} decode [${config.decoders.join(', ')}]`,
  );
  let closed: Promise<void> | null = null;
  const close = () => {
    closed ??= (async () => {
      for (const t of timers) clearInterval(t);
      await discovery?.stop();
      for (const a of st.aborters) a.abort(new Error('router shutting down'));
      await app.close();
      kvTiming?.close();
      await health.settle();
      await scraping?.catch(() => undefined);
      await kvFeed?.close();
      await Promise.all([st.prefillers.closeAll(), st.decoders.closeAll()]);
    })();
    return closed;
  };
  const reconfigure = (input: RouterConfig) => {
    const next = normalizeRouterConfig(input);
    if (next.serviceDiscovery !== rc.serviceDiscovery) throw new PdsError('PDS_ERR_CONFIG', `service discovery cannot change at run time (${rc.serviceDiscovery} -> ${next.serviceDiscovery})`);
    const np = poolsOf(next);
    for (const p of [np.prefillPolicy, np.decodePolicy]) {
      if (p === 'kvaware' && !kvFeed) throw new PdsError('PDS_ERR_CONFIG', 'kvaware needs the KV-event feed: start the router with a kvaware pool to switch to it at run time');
    }
    const opts = { sessionKey: next.sessionKey ?? undefined, ...(kvFeed ? { kvIndex: kvFeed.index } : {}) };
    const policyFor = (set: UpstreamSet, name: string) =>
      set.policy.name === name && next.sessionKey === rc.sessionKey ? set.policy : createPolicy(name, opts); // throws before anything changed
    const prefillPolicy = policyFor(st.prefillers, np.prefillPolicy);
    const decodePolicy = policyFor(st.decoders, np.decodePolicy);
    for (const k of ['routingLogic', 'sessionKey', 'prefillLabels', 'decodeLabels', 'prefillPolicy', 'decodePolicy'] as const) (rc as unknown as Record<string, unknown>)[k] = next[k];
    for (const [set, p] of [[st.prefillers, prefillPolicy], [st.decoders, decodePolicy]] as const) {
      if (set.policy === p) continue;
      set.policy = p;
      if (p instanceof KvAwarePolicy) kvFeed?.policies.push(p);
    }
    if (rc.serviceDiscovery === 'static') {
      applyDiscovered(st, rc, next.backends, initUpstream);
      for (const u of [...st.prefillers.all, ...st.decoders.all]) {
        const b = next.backends.find((x) => x.url === u.origin);
        if (b?.model) u.models = [b.model];
      }
    }
    kvSync();
    log.info(`router reconfigured (--routing-logic ${rc.routingLogic}; prefill policy ${st.prefillers.policy.name}, decode policy ${st.decoders.policy.name}): ` +
      `${st.prefillers.size} prefill [${st.config.prefillers.join(', ')}], ${st.decoders.size} decode [${st.config.decoders.join(', ')}]`);
  };
  return { url, port, state: st, stats, app, checkHealth: health.run, scrapeStats, close, kvFeed, reconfigure };
}

/** Served model names from an engine's /v1/models (engines found without --static-models). */
async function learnModels(up: Upstream, headers: Record<string, string>): Promise<void> {
  try {
    const res = await up.pool.request({ path: '/v1/models', method: 'GET', headers, headersTimeout: 3000, bodyTimeout: 3000, signal: AbortSignal.timeout(3000) });
    const j = (await res.body.json()) as { data?: { id?: unknown }[] };
    if (res.statusCode === 200 && Array.isArray(j?.data)) up.models = j.data.map((m) => m?.id).filter((x): x is string => typeof x === 'string');
  } catch {
    /* try again at the next scrape */
  }
}

