// --log-stats: one block per engine every --log-stats-interval, in vllm_router's layout.
import type { Upstream } from '../gateway/upstream.js';
import type { RequestStats } from './request-stats.js';

export function statsReport(engines: { up: Upstream; role: string }[], stats: RequestStats, now = Date.now()): string {
  const bar = '='.repeat(50);
  const out = [bar];
  for (const { up, role } of engines) {
    const s = stats.of(up.origin, now);
    const e = up.engineStats;
    const hit = e?.prefixQueries ? e.prefixHits / e.prefixQueries : 0;
    out.push(
      `Server: ${up.origin} (${role}${up.label ? `, label ${up.label}` : ''}, ${up.healthy ? 'healthy' : `down: ${up.lastError ?? '?'}`})`,
      `Models:${up.models.length ? '' : ' (unknown)'}`,
      ...up.models.map((m) => `  - ${m}`),
      ` Engine Stats: Running Requests: ${e?.running ?? 0}, Queued Requests: ${e?.waiting ?? 0}, GPU Cache Hit Rate: ${hit.toFixed(2)}, KV Usage: ${(e?.kvUsage ?? 0).toFixed(2)}`,
      ` Request Stats: QPS: ${s.qps.toFixed(2)}, Avg Latency: ${s.avgLatencyS.toFixed(3)} s, Avg ITL: ${(s.avgItlS * 1000).toFixed(2)} ms, ` +
        `TTFT p50/p99: ${s.ttftP50Ms.toFixed(1)}/${s.ttftP99Ms.toFixed(1)} ms, Prefill Requests: ${s.inPrefill}, Decoding Requests: ${s.inDecode}, Finished: ${s.finished}`,
      '-'.repeat(50),
    );
  }
  out.push(`Total requests: ${stats.total}, in flight: ${stats.inflight}`, bar);
  return out.join('\n');
}
