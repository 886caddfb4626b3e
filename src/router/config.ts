// The router's one config type (vllm_router's flags, src/cli/router.ts), validated once by
// normalizeRouterConfig: backends parsed and split into the prefill and decode pools.
import { PdsError } from '../util/errors.js';
import { defaultProxyConfig, normalizeOrigin, type ProxyConfig } from '../gateway/config.js';
import { policyNames } from '../gateway/policies/registry.js';

export const routingLogics = ['roundrobin', 'session', 'prefixaware', 'kvaware', 'disaggregated_prefill', 'least-load', 'power-of-two'] as const;
export type RoutingLogic = (typeof routingLogics)[number];

export interface Backend {
  url: string; // origin
  model: string | null; // --static-models, by position
  label: string | null; // --static-model-labels, by position
  type: string | null; // --static-model-types (chat, completion, embeddings, ...), by position
}

export interface RouterConfig {
  gateway: Omit<ProxyConfig, 'prefillers' | 'decoders'>; // timeouts, limits, keys, secret, listener
  serviceDiscovery: 'static' | 'k8s';
  backends: Backend[];
  routingLogic: RoutingLogic;
  sessionKey: string | null;
  prefillLabels: string[];
  decodeLabels: string[];
  prefillPolicy: string | null; // null = the logic's default
  decodePolicy: string | null;
  logStats: boolean;
  logStatsIntervalMs: number;
  engineStatsIntervalMs: number;
  requestStatsWindowMs: number;
  maxQueue: number; // beyond gateway.maxInflight, requests wait here (FIFO); full -> 429
  queueTimeoutMs: number; // longest wait in that queue -> 429
  breakerFailures: number; // failed legs in a row that open an engine's breaker; 0 = off
  breakerCooldownMs: number; // first open period (doubles on each reopening, at most 16x)
  prefillRetryBackoffMs: number; // jittered wait before the one prefill retry
  // kvaware: where each engine publishes KV events (kv-events-feed.ts). By position with the backends
  // (--kv-events-endpoints), else tcp://<backend host>:<kvEventsPort> (--kv-events-port), else none.
  kvEventsEndpoints: string[];
  kvEventsPort: number | null;
  kvEventsTopic: string;
  // Subscribe in plaintext even with an internal secret (engines that are real vLLM, which has no CurveZMQ).
  // With a secret and without this, subscriptions use CurveZMQ keys derived from it (kv-events/curve.ts).
  kvEventsPlaintext: boolean;
  // conditional disaggregation (conditional-disagg.ts; each 0 = that rule off)
  localPrefillMaxTokens: number; // prompt tokens left after the decoder's prefix hit at or below which the decoder prefills
  prefillBusyLoad: number; // every usable prefiller at this load (in flight / running + waiting) or more: the decoder prefills
  decodeBusyLoad: number; // the decoder at this load or more vetoes prefilling itself (the prefill leg runs)
  // --service-discovery k8s (k8s-discovery.ts)
  k8sNamespace: string;
  k8sLabelSelector: string | null;
  k8sPort: number;
  k8sModelLabelKey: string; // pod label holding the model label (production-stack: "model")
}

export const defaultRouterConfig: Omit<RouterConfig, 'backends'> = {
  gateway: { ...defaultProxyConfig, port: 8001 },
  serviceDiscovery: 'static',
  routingLogic: 'roundrobin',
  sessionKey: null,
  prefillLabels: [],
  decodeLabels: [],
  prefillPolicy: null,
  decodePolicy: null,
  logStats: false,
  logStatsIntervalMs: 10_000,
  engineStatsIntervalMs: 30_000,
  requestStatsWindowMs: 60_000,
  maxQueue: 256,
  queueTimeoutMs: 30_000,
  breakerFailures: 3,
  breakerCooldownMs: 5_000,
  prefillRetryBackoffMs: 50,
  kvEventsEndpoints: [],
  kvEventsPort: null,
  kvEventsTopic: '',
  kvEventsPlaintext: false,
  localPrefillMaxTokens: 0,
  prefillBusyLoad: 0,
  decodeBusyLoad: 0,
  k8sNamespace: 'default',
  k8sLabelSelector: null,
  k8sPort: 8000,
  k8sModelLabelKey: 'model',
};

const list = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim());

/** --static-backends / --static-models / --static-model-labels / --static-model-types -> backends. */
export function staticBackends(backends: string, models?: string, labels?: string, types?: string): Backend[] {
  const urls = list(backends).filter(Boolean);
  if (!urls.length) throw new PdsError('PDS_ERR_CONFIG', '--service-discovery static needs --static-backends "http://host:port,..."');
  const m = models ? list(models) : [];
  const l = labels ? list(labels) : [];
  const t = types ? list(types) : [];
  for (const [name, xs] of [['--static-models', m], ['--static-model-labels', l], ['--static-model-types', t]] as const) {
    if (xs.length && xs.length !== urls.length) throw new PdsError('PDS_ERR_CONFIG', `${name} has ${xs.length} entries for ${urls.length} backends`);
  }
  return urls.map((u, i) => ({ url: normalizeOrigin(u), model: m[i] || null, label: l[i] || null, type: t[i] || null }));
}

export interface Pools {
  prefill: Backend[];
  decode: Backend[];
  prefillPolicy: string;
  decodePolicy: string;
}

/** Which backends serve which role, and each pool's policy. */
export function poolsOf(c: RouterConfig): Pools {
  if (c.routingLogic === 'disaggregated_prefill') {
    if (!c.prefillLabels.length || !c.decodeLabels.length) {
      throw new PdsError('PDS_ERR_CONFIG', 'disaggregated_prefill needs --prefill-model-labels and --decode-model-labels');
    }
    return {
      prefill: c.backends.filter((b) => b.label !== null && c.prefillLabels.includes(b.label)),
      decode: c.backends.filter((b) => b.label !== null && c.decodeLabels.includes(b.label)),
      prefillPolicy: c.prefillPolicy ?? 'least-load',
      decodePolicy: c.decodePolicy ?? 'least-load',
    };
  }
  const logicPolicy = c.routingLogic;
  return { prefill: [], decode: c.backends, prefillPolicy: c.prefillPolicy ?? 'roundrobin', decodePolicy: c.decodePolicy ?? logicPolicy };
}

export function normalizeRouterConfig(c: RouterConfig): RouterConfig {
  if (!routingLogics.includes(c.routingLogic)) {
    throw new PdsError('PDS_ERR_CONFIG', `--routing-logic must be one of ${routingLogics.join(', ')}, got '${c.routingLogic}'`);
  }
  if (c.routingLogic === 'session' && !c.sessionKey) throw new PdsError('PDS_ERR_CONFIG', '--routing-logic session needs --session-key HEADER');
  for (const [flag, p] of [['--prefill-policy', c.prefillPolicy], ['--decode-policy', c.decodePolicy]] as const) {
    if (p !== null && !(policyNames as readonly string[]).includes(p)) throw new PdsError('PDS_ERR_CONFIG', `${flag} must be one of ${policyNames.join(', ')}, got '${p}'`);
  }
  for (const [flag, v] of [['--log-stats-interval', c.logStatsIntervalMs], ['--engine-stats-interval', c.engineStatsIntervalMs], ['--request-stats-window', c.requestStatsWindowMs]] as const) {
    if (!(v > 0)) throw new PdsError('PDS_ERR_CONFIG', `${flag} must be > 0`);
  }
  for (const [flag, v] of [['--local-prefill-max-tokens', c.localPrefillMaxTokens], ['--prefill-busy-load', c.prefillBusyLoad], ['--decode-busy-load', c.decodeBusyLoad]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new PdsError('PDS_ERR_CONFIG', `${flag} must be an integer >= 0, got ${v}`);
  }
  if (c.serviceDiscovery !== 'static' && c.serviceDiscovery !== 'k8s') throw new PdsError('PDS_ERR_CONFIG', `--service-discovery must be static or k8s, got '${c.serviceDiscovery}'`);
  if (c.serviceDiscovery === 'k8s') {
    if (c.kvEventsEndpoints.length) throw new PdsError('PDS_ERR_CONFIG', 'with --service-discovery k8s, engines\' KV events are found by --kv-events-port (pods come and go)');
    if (c.routingLogic === 'disaggregated_prefill' && (!c.prefillLabels.length || !c.decodeLabels.length)) {
      throw new PdsError('PDS_ERR_CONFIG', 'disaggregated_prefill needs --prefill-model-labels and --decode-model-labels');
    }
    if (!Number.isInteger(c.k8sPort) || c.k8sPort < 1 || c.k8sPort > 65535) throw new PdsError('PDS_ERR_CONFIG', `--k8s-port must be a port number, got ${c.k8sPort}`);
    return c; // pools fill as pods become ready
  }
  if (c.kvEventsEndpoints.length && c.kvEventsEndpoints.length !== c.backends.length) {
    throw new PdsError('PDS_ERR_CONFIG', `--kv-events-endpoints has ${c.kvEventsEndpoints.length} entries for ${c.backends.length} backends`);
  }
  for (const ep of c.kvEventsEndpoints) {
    if (!/^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(ep)) throw new PdsError('PDS_ERR_CONFIG', `--kv-events-endpoints: '${ep}' is not tcp://HOST:PORT`);
  }
  const pools = poolsOf(c);
  if (!pools.decode.length) throw new PdsError('PDS_ERR_CONFIG', `no decode backend: none of the backends has a label in --decode-model-labels (${c.decodeLabels.join(',')})`);
  if (c.routingLogic === 'disaggregated_prefill' && !pools.prefill.length) {
    throw new PdsError('PDS_ERR_CONFIG', `no prefill backend: none of the backends has a label in --prefill-model-labels (${c.prefillLabels.join(',')})`);
  }
  return c;
}
