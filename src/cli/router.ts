// `pdserve router`: production-stack's router (src/router) with vllm_router's flags, plus
// --prefill-policy/--decode-policy (vllm-project's Rust router), --api-key and --internal-secret-file.
import type { Command } from 'commander';
import { defaultRouterConfig, routingLogics, staticBackends, type RouterConfig, type RoutingLogic } from '../router/config.js';
import { startRouter } from '../router/server.js';
import { addEdgeOptions, edgeSettings, type EdgeFlags } from './edge-flags.js';
import { intOption, numOption } from './flags.js';
import { policyNames } from '../gateway/policies/registry.js';
import { DynamicConfigWatcher, readDynamicConfig, type DynamicFlags } from '../router/dynamic-config.js';
import { PdsError } from '../util/errors.js';

const csv = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);

export interface RouterFlags extends EdgeFlags {
  host: string;
  port: number;
  serviceDiscovery: string;
  staticBackends?: string;
  staticModels?: string;
  staticModelLabels?: string;
  staticModelTypes?: string;
  staticBackendHealthChecks?: boolean;
  routingLogic: string;
  sessionKey?: string;
  prefillModelLabels?: string;
  decodeModelLabels?: string;
  prefillPolicy?: string;
  decodePolicy?: string;
  k8sNamespace: string;
  k8sLabelSelector?: string;
  k8sPort: number;
  logStats?: boolean;
  logStatsInterval: number;
  engineStatsInterval: number;
  requestStatsWindow: number;
  healthCheckInterval: number;
  prefillTimeout: number;
  decodeTimeout: number;
  connectTimeout: number;
  maxInflight: number;
  upstreamApiKey?: string;
  maxQueue?: number;
  queueTimeout?: number;
  breakerFailures?: number;
  breakerCooldown?: number;
  prefillRetryBackoff?: number;
  kvEventsEndpoints?: string;
  kvEventsPort?: number;
  kvEventsTopic?: string;
  kvEventsPlaintext?: boolean;
  k8sModelLabelKey?: string;
  localPrefillMaxTokens?: number;
  prefillBusyLoad?: number;
  decodeBusyLoad?: number;
  dynamicConfigJson?: string;
  dynamicConfigYaml?: string;
  dynamicConfigInterval?: number;
}

/** The running config `base` with a dynamic config file's settings laid over the flags (dynamic-config.ts). */
export function withDynamic(base: RouterConfig, f: RouterFlags, dyn: DynamicFlags): RouterConfig {
  const m = { ...f, ...dyn } as RouterFlags;
  const sd = m.serviceDiscovery as RouterConfig['serviceDiscovery'];
  return {
    ...base,
    serviceDiscovery: sd,
    backends: sd === 'static' ? staticBackends(m.staticBackends ?? '', m.staticModels, m.staticModelLabels, m.staticModelTypes) : [],
    routingLogic: m.routingLogic as RoutingLogic,
    sessionKey: m.sessionKey ?? null,
    prefillLabels: csv(m.prefillModelLabels),
    decodeLabels: csv(m.decodeModelLabels),
    prefillPolicy: m.prefillPolicy ?? null,
    decodePolicy: m.decodePolicy ?? null,
    k8sNamespace: m.k8sNamespace,
    k8sLabelSelector: m.k8sLabelSelector ?? null,
    k8sPort: m.k8sPort,
  };
}

export function routerConfigFromFlags(f: RouterFlags): RouterConfig {
  const d = defaultRouterConfig;
  const edge = edgeSettings(f, f.host);
  const sd = f.serviceDiscovery as RouterConfig['serviceDiscovery'];
  return {
    ...d,
    gateway: {
      ...d.gateway,
      host: f.host,
      port: f.port,
      apiKeys: edge.apiKeys,
      internalKey: edge.secret?.key ?? null,
      listener: edge.listener,
      ...(edge.bodyLimitBytes !== undefined ? { bodyLimitBytes: edge.bodyLimitBytes } : {}),
      upstreamApiKey: f.upstreamApiKey || null,
      healthIntervalMs: f.healthCheckInterval * 1000,
      prefillTimeoutMs: f.prefillTimeout * 1000,
      decodeTimeoutMs: f.decodeTimeout * 1000,
      connectTimeoutMs: f.connectTimeout * 1000,
      maxInflight: f.maxInflight,
      statsIntervalMs: 0,
    },
    serviceDiscovery: sd,
    backends: sd === 'static' ? staticBackends(f.staticBackends ?? '', f.staticModels, f.staticModelLabels, f.staticModelTypes) : [],
    routingLogic: f.routingLogic as RoutingLogic,
    sessionKey: f.sessionKey ?? null,
    prefillLabels: csv(f.prefillModelLabels),
    decodeLabels: csv(f.decodeModelLabels),
    prefillPolicy: f.prefillPolicy ?? null,
    decodePolicy: f.decodePolicy ?? null,
    logStats: !!f.logStats,
    logStatsIntervalMs: f.logStatsInterval * 1000,
    engineStatsIntervalMs: f.engineStatsInterval * 1000,
    requestStatsWindowMs: f.requestStatsWindow * 1000,
    maxQueue: f.maxQueue ?? d.maxQueue,
    queueTimeoutMs: (f.queueTimeout ?? d.queueTimeoutMs / 1000) * 1000,
    breakerFailures: f.breakerFailures ?? d.breakerFailures,
    breakerCooldownMs: (f.breakerCooldown ?? d.breakerCooldownMs / 1000) * 1000,
    prefillRetryBackoffMs: (f.prefillRetryBackoff ?? d.prefillRetryBackoffMs / 1000) * 1000,
    kvEventsEndpoints: csv(f.kvEventsEndpoints),
    kvEventsPort: f.kvEventsPort ?? null,
    kvEventsTopic: f.kvEventsTopic ?? '',
    kvEventsPlaintext: !!f.kvEventsPlaintext,
    k8sNamespace: f.k8sNamespace,
    k8sLabelSelector: f.k8sLabelSelector ?? null,
    k8sPort: f.k8sPort,
    k8sModelLabelKey: f.k8sModelLabelKey ?? d.k8sModelLabelKey,
    localPrefillMaxTokens: f.localPrefillMaxTokens ?? d.localPrefillMaxTokens,
    prefillBusyLoad: f.prefillBusyLoad ?? d.prefillBusyLoad,
    decodeBusyLoad: f.decodeBusyLoad ?? d.decodeBusyLoad,
  };
}

export function registerRouter(program: Command): void {
  const d = defaultRouterConfig;
  const cmd = program
    .command('router')
    .description('production-stack router: discovery, routing logics, disaggregated_prefill over xPyD engines')
    .option('--host <host>', 'address to listen on', d.gateway.host)
    .option('--port <port>', 'port to listen on', intOption('--port', 0), d.gateway.port)
    .option('--service-discovery <kind>', 'static | k8s (pods watched through the API server kubectl would use: KUBECONFIG, ~/.kube/config or in-cluster)', 'static')
    .option('--static-backends <urls>', 'comma list of engine URLs')
    .option('--static-models <names>', 'comma list: the model each backend serves')
    .option('--static-model-labels <labels>', 'comma list: each backend\'s model label (disaggregated_prefill picks roles by it)')
    .option('--static-model-types <types>', 'comma list: each backend\'s model type (chat, completion, ...)')
    .option('--static-backend-health-checks', 'health-check static backends (always on here: --health-check-interval)')
    .option('--routing-logic <logic>', routingLogics.join(' | '), d.routingLogic)
    .option('--session-key <header>', 'request header whose value pins a session to an engine (routing logic session)')
    .option('--prefill-model-labels <labels>', 'comma list of labels of prefill engines (disaggregated_prefill)')
    .option('--decode-model-labels <labels>', 'comma list of labels of decode engines (disaggregated_prefill)')
    .option('--prefill-policy <policy>', `prefill pool policy: ${policyNames.join(' | ')} (default least-load)`)
    .option('--decode-policy <policy>', `decode pool policy: ${policyNames.join(' | ')} (default: the routing logic's, least-load for disaggregated_prefill)`)
    .option('--k8s-namespace <ns>', 'namespace to watch (k8s discovery)', 'default')
    .option('--k8s-label-selector <sel>', 'pod label selector (k8s discovery)')
    .option('--k8s-port <port>', 'engine port on each pod (k8s discovery)', intOption('--k8s-port', 1), 8000)
    .option('--k8s-model-label-key <key>', 'pod label whose value is the engine\'s model label (k8s discovery; matched by --prefill/--decode-model-labels)', d.k8sModelLabelKey)
    .option('--log-stats', 'print engine and request stats every --log-stats-interval')
    .option('--log-stats-interval <s>', 'seconds between stats prints', numOption('--log-stats-interval', 0.01), d.logStatsIntervalMs / 1000)
    .option('--engine-stats-interval <s>', 'seconds between scrapes of each engine\'s /metrics', numOption('--engine-stats-interval', 0.01), d.engineStatsIntervalMs / 1000)
    .option('--request-stats-window <s>', 'window (seconds) of the request stats (QPS, latency, ITL)', numOption('--request-stats-window', 0.01), d.requestStatsWindowMs / 1000)
    .option('--health-check-interval <s>', 'seconds between active health checks (ejection and re-admission; 0 = off)', numOption('--health-check-interval', 0), d.gateway.healthIntervalMs / 1000)
    .option('--prefill-timeout <s>', 'max seconds for the prefill leg', numOption('--prefill-timeout', 0.001), d.gateway.prefillTimeoutMs / 1000)
    .option('--decode-timeout <s>', 'max seconds the decoder may stay silent', numOption('--decode-timeout', 0.001), d.gateway.decodeTimeoutMs / 1000)
    .option('--connect-timeout <s>', 'max seconds to open a connection to an engine', numOption('--connect-timeout', 0.001), d.gateway.connectTimeoutMs / 1000)
    .option('--max-inflight <n>', 'requests in flight beyond which clients get 429 (0 = unlimited)', intOption('--max-inflight', 0), d.gateway.maxInflight)
    .option('--max-queue <n>', 'requests beyond --max-inflight that wait (FIFO) before 429', intOption('--max-queue', 0), d.maxQueue)
    .option('--queue-timeout <s>', 'longest wait in that queue before 429', numOption('--queue-timeout', 0.001), d.queueTimeoutMs / 1000)
    .option('--breaker-failures <n>', 'failed legs in a row that open an engine\'s circuit breaker (0 = off)', intOption('--breaker-failures', 0), d.breakerFailures)
    .option('--breaker-cooldown <s>', 'seconds an open breaker waits before one trial request (doubles on reopening)', numOption('--breaker-cooldown', 0.001), d.breakerCooldownMs / 1000)
    .option('--prefill-retry-backoff <s>', 'jittered wait before the one prefill retry', numOption('--prefill-retry-backoff', 0), d.prefillRetryBackoffMs / 1000)
    .option('--kv-events-endpoints <eps>', 'kvaware: comma list, by position with the backends, of each engine\'s KV-event PUB endpoint (tcp://host:port; the engine\'s --kv-events-config endpoint)')
    .option('--kv-events-port <port>', 'kvaware: engines publish KV events on tcp://<backend host>:PORT (used without --kv-events-endpoints)', intOption('--kv-events-port', 1))
    .option('--kv-events-topic <topic>', 'kvaware: subscription topic prefix (the engines\' kv-events-config topic)', '')
    .option('--kv-events-plaintext', 'kvaware: subscribe without CurveZMQ even with --internal-secret-file (for vLLM engines; pdserve engines with the secret publish CurveZMQ only)')
    .option('--local-prefill-max-tokens <n>', 'conditional disaggregation: the decoder prefills a prompt itself (no prefill leg) when the tokens left after its prefix hit are at most N (0 = off)', intOption('--local-prefill-max-tokens', 0), d.localPrefillMaxTokens)
    .option('--prefill-busy-load <n>', 'conditional disaggregation: the decoder prefills itself when every usable prefiller has N or more requests (in flight, or running + waiting as it reports; 0 = off)', intOption('--prefill-busy-load', 0), d.prefillBusyLoad)
    .option('--decode-busy-load <n>', 'conditional disaggregation: a decoder with N or more requests never prefills itself; the prefill leg runs (0 = off). Decisions: pdserve:router_disagg_decisions_total{decision}', intOption('--decode-busy-load', 0), d.decodeBusyLoad)
    .option('--dynamic-config-json <file>', 'production-stack\'s dynamic config: a JSON file of router settings (routing_logic, static_backends, static_models, static_model_labels, prefill/decode_model_labels, session_key, ...) read at start over these flags and re-read every --dynamic-config-interval; a bad file is logged and the running config kept')
    .option('--dynamic-config-yaml <file>', 'the same as a YAML file')
    .option('--dynamic-config-interval <s>', 'seconds between re-reads of the dynamic config file', numOption('--dynamic-config-interval', 0.05), 10)
    .option('--upstream-api-key <key>', 'Bearer key sent to the engines; the client\'s is never forwarded');
  addEdgeOptions(cmd, `default ${d.gateway.bodyLimitBytes / 2 ** 20} MiB`).action(async (flags: RouterFlags) => {
    let router: Awaited<ReturnType<typeof startRouter>>;
    let watcher: DynamicConfigWatcher | null = null;
    try {
      if (flags.dynamicConfigJson && flags.dynamicConfigYaml) throw new PdsError('PDS_ERR_CONFIG', 'give --dynamic-config-json or --dynamic-config-yaml, not both');
      const dynPath = flags.dynamicConfigJson ?? flags.dynamicConfigYaml;
      const format = flags.dynamicConfigJson ? 'json' : 'yaml';
      const initial = dynPath ? await readDynamicConfig(dynPath, format).catch((e: Error) => {
        throw new PdsError('PDS_ERR_CONFIG', `dynamic config ${dynPath}: ${e.message}`);
      }) : null;
      const base = routerConfigFromFlags({ ...flags, ...(initial?.flags ?? {}) } as RouterFlags);
      router = await startRouter(base);
      if (dynPath && initial) {
        const r = router;
        watcher = new DynamicConfigWatcher(dynPath, format, (flags.dynamicConfigInterval ?? 10) * 1000, (dyn) => r.reconfigure(withDynamic(base, flags, dyn)), initial.digest);
        watcher.start();
      }
    } catch (e) {
      console.error(`pdserve router: ${(e as Error).message}`);
      process.exit(2);
    }
    const stop = () => {
      void (watcher?.stop() ?? Promise.resolve()).then(() => router.close()).then(() => process.exit(0));
      setTimeout(() => process.exit(0), 5000).unref();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
