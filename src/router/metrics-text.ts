// The router's /metrics: production-stack's gauge names, one sample per engine (label server=URL),
// rendered from the request stats and the scraped engine stats at scrape time, followed by the
// gateway's own pdserve_proxy_* counters and histograms.
import type { Upstream } from '../gateway/upstream.js';
import type { RequestStats } from './request-stats.js';

const gauges: [name: string, help: string, read: (u: Upstream, s: ReturnType<RequestStats['of']>) => number][] = [
  ['vllm:current_qps', 'Requests per second over the request stats window', (_u, s) => s.qps],
  ['vllm:avg_decoding_length', 'Average body chunks (about tokens when streaming) per finished request', (_u, s) => s.avgDecodingLength],
  ['vllm:num_prefill_requests', 'Requests in their prefill leg on this engine now', (_u, s) => s.inPrefill],
  ['vllm:num_decoding_requests', 'Requests being decoded on this engine now', (_u, s) => s.inDecode],
  ['vllm:num_requests_running', 'Requests running on the engine (its own /metrics, or the router\'s in flight there when larger)', (u) => Math.max(u.inflight, u.engineStats?.running ?? 0)],
  ['vllm:num_requests_waiting', 'Requests waiting in the engine\'s queue (its /metrics)', (u) => u.engineStats?.waiting ?? 0],
  ['vllm:avg_latency', 'Average end-to-end latency (s) over the window', (_u, s) => s.avgLatencyS],
  ['vllm:avg_itl', 'Average inter-token latency (s) over the window', (_u, s) => s.avgItlS],
  ['vllm:gpu_prefix_cache_hit_rate', 'Prefix cache hit rate (hits / queries, tokens) the engine reports', (u) => (u.engineStats?.prefixQueries ? u.engineStats.prefixHits / u.engineStats.prefixQueries : 0)],
  ['vllm:gpu_cache_usage_perc', 'KV cache usage 0..1 the engine reports', (u) => u.engineStats?.kvUsage ?? 0],
  ['vllm:engine_healthy', '1 when the engine passed its last health check', (u) => (u.healthy ? 1 : 0)],
];

const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function routerMetricsText(engines: Upstream[], stats: RequestStats, now = Date.now()): string {
  const lines: string[] = [];
  const per = engines.map((u) => [u, stats.of(u.origin, now)] as const);
  for (const [name, help, read] of gauges) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [u, s] of per) lines.push(`${name}{server="${esc(u.origin)}"} ${read(u, s)}`);
  }
  lines.push('# HELP vllm:healthy_pods_total Engines that passed their last health check', '# TYPE vllm:healthy_pods_total gauge');
  lines.push(`vllm:healthy_pods_total ${engines.filter((u) => u.healthy).length}`);
  return lines.join('\n') + '\n';
}
