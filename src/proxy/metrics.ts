// Prometheus metrics of one proxy (its own Registry, so several proxies can live in one process).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type ErrorKind =
  | 'bad_request' // the client's body is not a JSON object
  | 'upstream_4xx' // an engine rejected the request; relayed as is
  | 'prefill_5xx'
  | 'prefill_unreachable'
  | 'decode_unreachable'
  | 'no_decoder'
  | 'timeout'
  | 'upstream_error' // socket errors after the request reached an engine
  | 'client_abort'
  | 'overloaded';

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120, 300];

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly prefillSeconds: Histogram<'endpoint'>;
  readonly decodeTtftSeconds: Histogram<'endpoint'>;
  readonly e2eSeconds: Histogram<'endpoint'>;
  readonly requests: Counter<'endpoint' | 'mode'>;
  readonly errors: Counter<'kind'>;
  readonly fallbacks: Counter<'reason'>;
  readonly retries: Counter<'role'>;
  readonly inflight: Gauge;
  readonly upstreamRequests: Counter<'role' | 'upstream' | 'outcome'>;
  readonly upstreamHealthy: Gauge<'role' | 'upstream'>;

  constructor() {
    const registers = [this.registry];
    this.prefillSeconds = new Histogram({
      name: 'pdserve_proxy_prefill_seconds',
      help: 'Prefill leg duration: request sent to prefiller until its full answer',
      labelNames: ['endpoint'],
      buckets: latencyBuckets,
      registers,
    });
    this.decodeTtftSeconds = new Histogram({
      name: 'pdserve_proxy_decode_ttft_seconds',
      help: 'Decode leg start until the first body byte from the decoder',
      labelNames: ['endpoint'],
      buckets: latencyBuckets,
      registers,
    });
    this.e2eSeconds = new Histogram({
      name: 'pdserve_proxy_e2e_seconds',
      help: 'Client request arrival until the last byte relayed',
      labelNames: ['endpoint'],
      buckets: latencyBuckets,
      registers,
    });
    this.requests = new Counter({
      name: 'pdserve_proxy_requests_total',
      help: 'Generation requests received; mode = disagg | decode_only (no prefillers, or fallback)',
      labelNames: ['endpoint', 'mode'],
      registers,
    });
    this.errors = new Counter({ name: 'pdserve_proxy_errors_total', help: 'Failed requests by kind', labelNames: ['kind'], registers });
    this.fallbacks = new Counter({
      name: 'pdserve_proxy_fallbacks_total',
      help: 'Requests the decoder prefilled itself; reason = unreachable | prefill_5xx | prefill_frozen | prefill_error | busy | short_prompt',
      labelNames: ['reason'],
      registers,
    });
    this.retries = new Counter({
      name: 'pdserve_proxy_retries_total',
      help: 'Requests sent to a second engine (a reset before any answer, or a failed prefill falling back); at most one per request',
      labelNames: ['role'],
      registers,
    });
    this.inflight = new Gauge({ name: 'pdserve_proxy_inflight_requests', help: 'Requests in flight', registers });
    this.upstreamRequests = new Counter({
      name: 'pdserve_proxy_upstream_requests_total',
      help: 'Legs sent per upstream; outcome = ok | 4xx | 5xx | unreachable | reset | frozen | timeout | error | aborted',
      labelNames: ['role', 'upstream', 'outcome'],
      registers,
    });
    this.upstreamHealthy = new Gauge({
      name: 'pdserve_proxy_upstream_healthy',
      help: '1 when the upstream passed its last health check',
      labelNames: ['role', 'upstream'],
      registers,
    });
  }
}
