// GET /dashboard/data: the JSON the dashboard page polls (dashboard-page.ts renders it as text).
// Shape (times in ms; a null time = that stage did not happen):
// { now, window_s, routing_logic, prefill_policy, decode_policy, requests_total, inflight,
//   disagg_decisions: {remote, local_short, ...} | null (conditional disaggregation off),
//   overall: {qps, ttft_p50_ms, ttft_p99_ms, itl_p50_ms, itl_p99_ms, avg_latency_s, finished},
//   engines: [{url, role, label, models, healthy, breaker, last_error, inflight, running, waiting,
//              kv_usage, prefix_hit_rate (engine-reported hits/queries, null before a scrape),
//              kv_events_blocks (kvaware index, null without), stats: same fields as overall}],
//   recent: [{id, path, arrived_at, outcome, status, chunks, prefill, decode,
//             t: {admitted, prefill_start, prefill_end, decode_start, kv_lookup, kv_start, kv_end, first_token, last_token},
//             kv: {load_ms, tokens, bytes} | null}] }
// kv_*: the decoder's own KV timing (kv-timing-poll.ts) placed on the router's clock from decode_start
// (the leg's network and HTTP intake fall into decode_start -> kv_lookup); all null while unknown.
// recent is newest first, at most RequestStats' RECENT records.
import type { Upstream } from '../gateway/upstream.js';
import type { RequestStats, ServerStats } from './request-stats.js';

export interface DashboardSource {
  engines: { up: Upstream; role: string }[];
  stats: RequestStats;
  routingLogic: string;
  prefillPolicy: string;
  decodePolicy: string;
  kvBlocks?: (origin: string) => number | null;
  disaggDecisions?: Record<string, number>; // conditional disaggregation on: decisions so far
}

const r1 = (x: number) => Math.round(x * 10) / 10;

function statsJson(s: ServerStats) {
  return {
    qps: Math.round(s.qps * 1000) / 1000,
    ttft_p50_ms: r1(s.ttftP50Ms),
    ttft_p99_ms: r1(s.ttftP99Ms),
    itl_p50_ms: r1(s.itlP50Ms),
    itl_p99_ms: r1(s.itlP99Ms),
    avg_latency_s: Math.round(s.avgLatencyS * 1e4) / 1e4,
    finished: s.finished,
    in_prefill: s.inPrefill,
    in_decode: s.inDecode,
  };
}

export function dashboardData(src: DashboardSource, now = Date.now()) {
  const t = (x: number | null) => (x === null ? null : r1(x));
  return {
    now,
    window_s: src.stats.windowMs / 1000,
    routing_logic: src.routingLogic,
    prefill_policy: src.prefillPolicy,
    decode_policy: src.decodePolicy,
    requests_total: src.stats.total,
    inflight: src.stats.inflight,
    overall: statsJson(src.stats.overall(now)),
    disagg_decisions: src.disaggDecisions ? { ...src.disaggDecisions } : null,
    engines: src.engines.map(({ up, role }) => {
      const e = up.engineStats;
      return {
        url: up.origin,
        role,
        label: up.label,
        models: up.models,
        healthy: up.healthy,
        breaker: up.breaker?.state ?? 'closed',
        last_error: up.lastError,
        inflight: up.inflight,
        running: e?.running ?? null,
        waiting: e?.waiting ?? null,
        kv_usage: e?.kvUsage ?? null,
        prefix_hit_rate: e && e.prefixQueries > 0 ? e.prefixHits / e.prefixQueries : null,
        kv_events_blocks: src.kvBlocks?.(up.origin) ?? null,
        stats: statsJson(src.stats.of(up.origin, now)),
      };
    }),
    recent: [...src.stats.recent].reverse().map((r) => ({
      id: r.requestId,
      path: r.path,
      arrived_at: r.arrivedAt,
      outcome: r.outcome,
      status: r.status,
      chunks: r.chunks,
      prefill: r.prefillOrigin,
      decode: r.decodeOrigin,
      kv: r.kv ? { load_ms: r.kv.loadMs, tokens: r.kv.tokens, bytes: r.kv.bytes } : null,
      t: {
        ...kvTimes(r),
        admitted: t(r.admittedMs),
        prefill_start: t(r.prefillStartMs),
        prefill_end: t(r.prefillEndMs),
        decode_start: t(r.decodeStartMs),
        first_token: t(r.firstByteMs),
        last_token: t(r.lastByteMs),
      },
    })),
  };
}

/** The decoder's KV times on the router's clock (ms since arrival), null while unknown. */
function kvTimes(r: RequestStats['recent'][number]) {
  const base = r.decodeStartMs;
  const k = r.kv;
  if (!k || base === null) return { kv_lookup: null, kv_start: null, kv_end: null };
  const at = (x: number | null) => (x === null ? null : r1(base + x));
  return { kv_lookup: at(k.lookupStartMs), kv_start: at(k.loadStartMs), kv_end: at(k.loadEndMs) };
}
