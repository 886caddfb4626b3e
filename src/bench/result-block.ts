// The `vllm bench serve` result block, byte for byte: 50-column rules, rows `{:<40} {:<10}` (ints)
// and `{:<40} {:<10.2f}` (floats; rows keep Python's trailing padding), sections in vLLM's order.
import { center, percentileWord, rowFloat, rowInt } from './py-format.js';
import type { BenchmarkMetrics, MetricStats, PercentileMetric } from './types.js';

export interface BlockInput {
  metrics: BenchmarkMetrics;
  durationS: number;
  maxConcurrency: number | null;
  requestRate: number;
  /** Which sections to print (default ttft,tpot,itl). */
  percentileMetrics: readonly PercentileMetric[];
  goodputConfigured: boolean;
}

/** [attribute, name, header] in vLLM's print order. */
export const metricSections: ReadonlyArray<[PercentileMetric, string, string]> = [
  ['ttft', 'TTFT', 'Time to First Token'],
  ['tpot', 'TPOT', 'Time per Output Token (excl. 1st token)'],
  ['itl', 'ITL', 'Inter-token Latency'],
  ['e2el', 'E2EL', 'End-to-end Latency'],
  ['client_queue_time', 'Client Queue Time', 'Client-side Queueing'],
  ['e2el_including_client_queue', 'E2EL incl. Client Queue', 'Queue-inclusive End-to-end Latency'],
];

export function statsOf(m: BenchmarkMetrics, k: PercentileMetric): MetricStats {
  switch (k) {
    case 'ttft': return m.ttft;
    case 'tpot': return m.tpot;
    case 'itl': return m.itl;
    case 'e2el': return m.e2el;
    case 'client_queue_time': return m.clientQueueTime;
    case 'e2el_including_client_queue': return m.e2elIncludingClientQueue;
  }
}

/** Whether vLLM prints a section: queue sections need --max-concurrency (and a finite rate for e2el+queue). */
export function sectionApplies(k: PercentileMetric, maxConcurrency: number | null, requestRate: number): boolean {
  if (k === 'client_queue_time') return maxConcurrency !== null;
  if (k === 'e2el_including_client_queue') return maxConcurrency !== null && requestRate !== Infinity;
  return true;
}

/** Summary rows (label, value, isInt) before the metric sections; shared with the compare table. */
export function summaryRows(b: BlockInput): Array<[string, number, boolean]> {
  const m = b.metrics;
  const rows: Array<[string, number, boolean]> = [
    ['Successful requests:', m.completed, true],
    ['Failed requests:', m.failed, true],
  ];
  if (b.maxConcurrency !== null) rows.push(['Maximum request concurrency:', b.maxConcurrency, true]);
  if (b.requestRate !== Infinity) rows.push(['Request rate configured (RPS):', b.requestRate, false]);
  rows.push(
    ['Benchmark duration (s):', b.durationS, false],
    ['Total input tokens:', m.totalInput, true],
    ['Total generated tokens:', m.totalOutput, true],
    ['Request throughput (req/s):', m.requestThroughput, false],
  );
  if (b.goodputConfigured) rows.push(['Request goodput (req/s):', m.requestGoodput, false]);
  rows.push(
    ['Output token throughput (tok/s):', m.outputThroughput, false],
    ['Peak output token throughput (tok/s):', m.maxOutputTokensPerS, false],
    ['Peak concurrent requests:', m.maxConcurrentRequests, false],
    ['Total token throughput (tok/s):', m.totalTokenThroughput, false],
  );
  return rows;
}

/** Section rows: [header, Array<[label, ms]>] for each selected, applicable metric. */
export function sectionRows(b: BlockInput): Array<[string, Array<[string, number]>]> {
  const out: Array<[string, Array<[string, number]>]> = [];
  for (const [k, name, header] of metricSections) {
    if (!b.percentileMetrics.includes(k) || !sectionApplies(k, b.maxConcurrency, b.requestRate)) continue;
    const s = statsOf(b.metrics, k);
    const rows: Array<[string, number]> = [
      [`Mean ${name} (ms):`, s.mean],
      [`Median ${name} (ms):`, s.median],
    ];
    for (const [p, v] of s.percentiles) rows.push([`P${percentileWord(p)} ${name} (ms):`, v]);
    out.push([header, rows]);
  }
  return out;
}

export function formatResultBlock(b: BlockInput): string {
  const lines = [center(' Serving Benchmark Result ', 50, '=')];
  for (const [label, v, isInt] of summaryRows(b)) lines.push(isInt ? rowInt(label, v) : rowFloat(label, v));
  for (const [header, rows] of sectionRows(b)) {
    lines.push(center(header, 50, '-'));
    for (const [label, v] of rows) lines.push(rowFloat(label, v));
  }
  lines.push('='.repeat(50));
  return lines.join('\n') + '\n';
}
