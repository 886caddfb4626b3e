// Prometheus metrics under vLLM's names, in a per-server Registry (several servers may share a process).
// Gauges and prefix-cache counters are read from engine.stats() at scrape time; request counters and
// latency histograms are fed by RequestTimer as outputs stream through the server.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineClient, FinishReason, KvLoadTiming } from '../engine/protocol.js';

// vLLM's bucket boundaries (seconds).
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
  80.0, 160.0, 640.0, 2560.0];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
const KV_LOAD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
  960.0, 1920.0, 7680.0];

/** A counter that mirrors a cumulative value read from the engine (inc by the delta at each scrape). */
function mirrorCounter(registry: Registry, name: string, help: string, model: string, read: () => number): Counter<'model_name'> {
  let last = 0;
  return new Counter({
    name, help, labelNames: ['model_name'], registers: [registry],
    collect() {
      const v = read();
      if (v < last) {
        this.reset();
        last = 0;
      }
      this.inc({ model_name: model }, v - last);
      last = v;
    },
  });
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly labels: { model_name: string };
  private readonly promptTokens: Counter<'model_name'>;
  private readonly generationTokens: Counter<'model_name'>;
  private readonly requestSuccess: Counter<'model_name' | 'finished_reason'>;
  readonly ttft: Histogram<'model_name'>;
  private readonly itl: Histogram<'model_name'>;
  private readonly tpot: Histogram<'model_name'>;
  private readonly e2e: Histogram<'model_name'>;
  private readonly prefillTime: Histogram<'model_name'>;
  private readonly queueTime: Histogram<'model_name'>;
  private readonly kvLoadTime: Histogram<'model_name'>;
  private readonly decodeTime: Histogram<'model_name'>;
  private readonly promptLen: Histogram<'model_name'>;
  private readonly genLen: Histogram<'model_name'>;

  /** grammar: the structured-output compiler, whose compiles are exported (pdserve:grammar_compiles_total) */
  constructor(engine: EngineClient, modelName: string, grammar: { readonly compiles: number } | null = null) {
    const r = this.registry;
    const m = modelName;
    this.labels = { model_name: m };
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, labelNames: ['model_name'], registers: [r], collect() { this.set({ model_name: m }, read()); } });
    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', () => engine.stats().numRequestsRunning);
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', () => engine.stats().numRequestsWaiting);
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', () => engine.stats().kvCacheUsage);
    // The pre-v1 name, still read by routers such as production-stack's.
    gauge('vllm:gpu_cache_usage_perc', 'GPU KV-cache usage. 1 means 100 percent usage.', () => engine.stats().kvCacheUsage);
    mirrorCounter(r, 'vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.', m,
      () => engine.stats().prefixCacheQueries);
    mirrorCounter(r, 'vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.', m,
      () => engine.stats().prefixCacheHits);
    // production-stack's router and dashboards read the pre-v1 names: the same counts under them
    mirrorCounter(r, 'vllm:gpu_prefix_cache_queries_total', 'Prefix cache queries, in tokens (pre-v1 name of vllm:prefix_cache_queries_total).', m,
      () => engine.stats().prefixCacheQueries);
    mirrorCounter(r, 'vllm:gpu_prefix_cache_hits_total', 'Prefix cache hits, in tokens (pre-v1 name of vllm:prefix_cache_hits_total).', m,
      () => engine.stats().prefixCacheHits);
    gauge('vllm:gpu_prefix_cache_hit_rate', 'Prefix cache hit rate since start: hits / queries, in tokens (0 before any query).', () => {
      const s = engine.stats();
      return s.prefixCacheQueries > 0 ? s.prefixCacheHits / s.prefixCacheQueries : 0;
    });
    mirrorCounter(r, 'vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.', m,
      () => engine.stats().numPreemptions);
    if (grammar) {
      mirrorCounter(r, 'pdserve:grammar_compiles_total', 'Structured-output grammars compiled against the vocabulary (one per distinct spec while cached).', m,
        () => grammar.compiles);
    }
    // the KV connector's cumulative events (stored/skipped chunks, hit/loaded tokens, failures), by name
    const kvLast = new Map<string, number>();
    new Counter({
      name: 'pdserve:kv_connector_events_total', help: 'KV connector events (event label: storedChunks, loadedTokens, failedLoads, ...).',
      labelNames: ['model_name', 'event'], registers: [r],
      collect() {
        for (const [event, v] of Object.entries(engine.stats().kvConnector ?? {})) {
          const last = kvLast.get(event) ?? 0;
          if (v > last) this.inc({ model_name: m, event }, v - last);
          kvLast.set(event, Math.max(v, last));
        }
      },
    });
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name, help, labelNames, registers: [r] });
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.', ['model_name']);
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.', ['model_name']);
    this.requestSuccess = counter('vllm:request_success_total', 'Count of successfully processed requests.',
      ['model_name', 'finished_reason']);
    const hist = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, buckets, labelNames: ['model_name'], registers: [r] });
    this.ttft = hist('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS);
    this.itl = hist('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS);
    this.tpot = hist('vllm:time_per_output_token_seconds', 'Histogram of time per output token in seconds.', ITL_BUCKETS);
    this.e2e = hist('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', E2E_BUCKETS);
    this.prefillTime = hist('vllm:request_prefill_time_seconds', 'Histogram of the prefill phase: request handed to the engine until its first output (includes time queued in the engine).', E2E_BUCKETS);
    this.queueTime = hist('vllm:request_queue_time_seconds', 'Histogram of time spent in the engine\'s waiting queue: request handed to the engine until the scheduler first ran it.', E2E_BUCKETS);
    this.kvLoadTime = hist('pdserve:kv_load_time_seconds', 'Histogram of the KV connector\'s load per request: external blocks allocated until ready (0 when nothing was loaded); requests the connector was asked about.', KV_LOAD_BUCKETS);
    this.decodeTime = hist('vllm:request_decode_time_seconds', 'Histogram of the decode phase: first output until the last.', E2E_BUCKETS);
    this.promptLen = hist('vllm:request_prompt_tokens', 'Number of prefill tokens per finished request.', TOKEN_BUCKETS);
    this.genLen = hist('vllm:request_generation_tokens', 'Number of generation tokens per finished request.', TOKEN_BUCKETS);
    // Export zeros from the start, as vLLM does, so rates work from the first scrape.
    this.promptTokens.inc(this.labels, 0);
    this.generationTokens.inc(this.labels, 0);
    for (const reason of ['stop', 'length', 'abort']) this.requestSuccess.inc({ ...this.labels, finished_reason: reason }, 0);
    for (const h of [this.ttft, this.itl, this.tpot, this.e2e, this.prefillTime, this.queueTime, this.kvLoadTime, this.decodeTime, this.promptLen, this.genLen]) h.zero(this.labels);
  }

  /** Call when the request is handed to the engine. */
  startRequest(onKvLoad?: (k: KvLoadTiming) => void): RequestTimer {
    return new RequestTimer(this, onKvLoad);
  }

  /** @internal used by RequestTimer */
  record(kind: 'prompt' | 'gen', n: number): void {
    (kind === 'prompt' ? this.promptTokens : this.generationTokens).inc(this.labels, n);
  }

  /** @internal used by RequestTimer */
  observe(kind: 'ttft' | 'itl' | 'e2e' | 'queue' | 'kv_load', seconds: number): void {
    if (kind === 'queue') this.queueTime.observe(this.labels, seconds);
    else if (kind === 'kv_load') this.kvLoadTime.observe(this.labels, seconds);
    else if (kind === 'itl') {
      this.itl.observe(this.labels, seconds);
      this.tpot.observe(this.labels, seconds);
    } else (kind === 'ttft' ? this.ttft : this.e2e).observe(this.labels, seconds);
  }

  /** @internal used by RequestTimer: a request ended (phases in seconds; null = no first output) */
  finished(reason: FinishReason, prefillS: number | null, decodeS: number | null, promptTokens: number, genTokens: number): void {
    this.requestSuccess.inc({ ...this.labels, finished_reason: reason });
    if (prefillS !== null) this.prefillTime.observe(this.labels, prefillS);
    if (decodeS !== null) this.decodeTime.observe(this.labels, decodeS);
    this.promptLen.observe(this.labels, promptTokens);
    this.genLen.observe(this.labels, genTokens);
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Per-request timing: output(n) for each engine increment, finish(reason) once. */
export class RequestTimer {
  private readonly start = performance.now();
  private first = 0;
  private last = 0;
  private started = false;
  private queued = false;
  private kvLoaded = false;
  private done = false;
  private promptLen = 0;
  private generated = 0;

  constructor(private readonly m: ServerMetrics, private readonly onKvLoad?: (k: KvLoadTiming) => void) {}

  /** queueTimeS: the engine's queued time, observed once (the first output that carries it) */
  output(promptLen: number, newTokens: number, queueTimeS?: number, kvLoad?: KvLoadTiming): void {
    const now = performance.now();
    if (kvLoad && !this.kvLoaded) {
      this.kvLoaded = true;
      this.m.observe('kv_load', Math.max(0, kvLoad.loadS));
      this.onKvLoad?.(kvLoad);
    }
    if (queueTimeS !== undefined && !this.queued) {
      this.queued = true;
      this.m.observe('queue', Math.max(0, queueTimeS));
    }
    if (!this.started) {
      this.started = true;
      this.first = now;
      this.promptLen = promptLen;
      this.m.observe('ttft', (now - this.start) / 1000);
      this.m.record('prompt', promptLen);
    } else if (newTokens > 0) {
      this.m.observe('itl', (now - this.last) / 1000 / newTokens);
    }
    if (newTokens > 0) this.m.record('gen', newTokens);
    this.generated += newTokens;
    this.last = now;
  }

  finish(reason: FinishReason): void {
    if (this.done) return;
    this.done = true;
    this.m.observe('e2e', (performance.now() - this.start) / 1000);
    const prefill = this.started ? (this.first - this.start) / 1000 : null;
    const decode = this.started ? (this.last - this.first) / 1000 : null;
    this.m.finished(reason, prefill, decode, this.promptLen, this.generated);
  }
}
