// Sweep results: one point per (target, swept value) and the per-target goodput. The JSON written
// by `bench sweep` is exactly SweepResult (snake_case keys, like vLLM's result files), and the HTML
// report is rendered from it alone, so saved sweeps can be merged into one report later.
import { calculateMetrics } from './metrics.js';
import { countGood } from './slo.js';
import type { SweepKind } from './sweep-config.js';
import type { GoodputConfig, RequestRecord } from './types.js';

export interface SweepPoint {
  /** The swept value: request rate (req/s) or max concurrency. */
  x: number;
  request_rate: number | 'inf';
  max_concurrency: number | null;
  num_requests: number;
  completed: number;
  failed: number;
  /** Requests meeting every SLO (failed ones never do). */
  good: number;
  /** 100 * good / num_requests. */
  slo_attainment: number;
  duration: number;
  request_throughput: number;
  /** vLLM's request goodput: good / duration. */
  request_goodput: number;
  output_throughput: number;
  mean_ttft_ms: number;
  p50_ttft_ms: number;
  p99_ttft_ms: number;
  mean_tpot_ms: number;
  p50_tpot_ms: number;
  p99_tpot_ms: number;
}

export interface SweepTargetResult {
  name: string;
  url: string;
  gpus: number;
  points: SweepPoint[];
  /**
   * DistServe's goodput: for a rate sweep the highest swept rate such that it and every lower swept
   * rate reach the attainment target; for a concurrency sweep the request throughput measured at
   * the highest such concurrency. 0 when even the lowest point misses.
   */
  goodput: number;
  /** The swept value goodput was read at (null when none qualified). */
  goodput_at: number | null;
  goodput_per_gpu: number;
  /** The highest vLLM request goodput (good requests / duration) of any point. */
  max_request_goodput: number;
  max_request_goodput_per_gpu: number;
}

export interface SweepResult {
  kind: 'pdserve-bench-sweep';
  date: string;
  sweep: SweepKind;
  values: number[];
  /** SLOs in ms, the --goodput pairs. */
  slo: GoodputConfig;
  slo_attainment_target: number;
  workload: Record<string, unknown>;
  model_id: string;
  tokenizer_id: string;
  targets: SweepTargetResult[];
  /** True when Ctrl+C stopped the sweep: only completed points are present. */
  interrupted: boolean;
  /** Points planned vs present. */
  planned_points: number;
  completed_points: number;
}

/** One finished run -> its sweep point. */
export function summarizePoint(o: {
  x: number; requestRate: number; maxConcurrency: number | null; records: readonly RequestRecord[];
  durationS: number; slo: GoodputConfig; countTokens?: (t: string) => number;
}): SweepPoint {
  const m = calculateMetrics({ records: o.records, durationS: o.durationS, percentiles: [50, 99], goodput: o.slo, countTokens: o.countTokens });
  const good = countGood(o.records, m.actualOutputLens, o.slo);
  const n = o.records.length;
  const p = (s: typeof m.ttft, q: number) => s.percentiles.find(([k]) => k === q)![1];
  return {
    x: o.x,
    request_rate: o.requestRate === Infinity ? 'inf' : o.requestRate,
    max_concurrency: o.maxConcurrency,
    num_requests: n,
    completed: m.completed,
    failed: m.failed,
    good,
    slo_attainment: n ? (100 * good) / n : 0,
    duration: o.durationS,
    request_throughput: m.requestThroughput,
    request_goodput: m.requestGoodput,
    output_throughput: m.outputThroughput,
    mean_ttft_ms: m.ttft.mean,
    p50_ttft_ms: p(m.ttft, 50),
    p99_ttft_ms: p(m.ttft, 99),
    mean_tpot_ms: m.tpot.mean,
    p50_tpot_ms: p(m.tpot, 50),
    p99_tpot_ms: p(m.tpot, 99),
  };
}

/** A target's goodput figures from its points (any order; read in ascending x). */
export function targetResult(name: string, url: string, gpus: number, kind: SweepKind, points: SweepPoint[], target: number): SweepTargetResult {
  const sorted = [...points].sort((a, b) => a.x - b.x);
  let at: SweepPoint | null = null;
  for (const p of sorted) {
    if (p.slo_attainment + 1e-9 < target) break; // contiguous from the lowest point: noise above a miss does not count
    at = p;
  }
  const goodput = at ? (kind === 'request_rate' ? at.x : at.request_throughput) : 0;
  const maxRg = sorted.reduce((m, p) => Math.max(m, p.request_goodput), 0);
  return {
    name, url, gpus, points: sorted, goodput, goodput_at: at ? at.x : null, goodput_per_gpu: goodput / gpus,
    max_request_goodput: maxRg, max_request_goodput_per_gpu: maxRg / gpus,
  };
}

export function sloText(slo: GoodputConfig): string {
  return (['ttft', 'tpot', 'e2el'] as const).filter((k) => slo[k] !== undefined).map((k) => `${k.toUpperCase()} <= ${slo[k]} ms`).join(', ');
}

const f2 = (x: number) => x.toFixed(2);

/**
 * Plain-text sweep table (one row per target and point) and the per-target goodput lines, with each
 * target's goodput per GPU relative to the first target and a line naming the best.
 */
export function formatSweepSummary(r: SweepResult): string {
  const xName = r.sweep === 'request_rate' ? 'rate' : 'conc';
  const w = Math.max(6, ...r.targets.map((t) => t.name.length)) + 1;
  const cols = [xName, 'attain%', 'P50TTFT', 'P99TTFT', 'P50TPOT', 'P99TPOT', 'req/s', 'out tok/s', 'goodput'];
  const lines: string[] = [];
  const title = ` SLO sweep: ${sloText(r.slo)}; attainment target ${r.slo_attainment_target}% `;
  lines.push(title.padStart(Math.floor((100 + title.length) / 2), '=').padEnd(100, '='));
  lines.push('target'.padEnd(w) + cols.map((c) => c.padStart(10)).join(''));
  for (const t of r.targets) {
    for (const p of t.points) {
      const v = [p.x, p.slo_attainment, p.p50_ttft_ms, p.p99_ttft_ms, p.p50_tpot_ms, p.p99_tpot_ms, p.request_throughput, p.output_throughput, p.request_goodput];
      lines.push(t.name.padEnd(w) + v.map((x) => f2(x).padStart(10)).join(''));
    }
  }
  lines.push('-'.repeat(100));
  const unit = r.sweep === 'request_rate' ? 'highest rate' : 'throughput at the highest concurrency';
  const first = r.targets[0];
  for (const t of r.targets) {
    const at = t.goodput_at === null ? `no ${xName} reaches ${r.slo_attainment_target}%` : `${unit} with >= ${r.slo_attainment_target}% attainment, at ${xName} ${t.goodput_at}`;
    const rel = first && t !== first && first.goodput_per_gpu > 0 ? `; ${f2(t.goodput_per_gpu / first.goodput_per_gpu)}x ${first.name} per GPU` : '';
    lines.push(`${t.name}: goodput ${f2(t.goodput)} req/s (${at}); ${t.gpus} GPU${t.gpus > 1 ? 's' : ''} -> ${f2(t.goodput_per_gpu)} req/s per GPU${rel}`);
  }
  if (r.targets.length > 1) {
    const best = [...r.targets].sort((a, b) => b.goodput_per_gpu - a.goodput_per_gpu);
    const tie = best[1] && best[1].goodput_per_gpu === best[0]!.goodput_per_gpu;
    lines.push(tie ? `Best goodput per GPU: tie between ${best.filter((t) => t.goodput_per_gpu === best[0]!.goodput_per_gpu).map((t) => t.name).join(', ')}`
      : `Best goodput per GPU: ${best[0]!.name} (${f2(best[0]!.goodput_per_gpu)} req/s per GPU)`);
  }
  if (r.interrupted) lines.push(`Interrupted: ${r.completed_points} of ${r.planned_points} points completed; only those are reported.`);
  lines.push('='.repeat(100));
  return lines.join('\n') + '\n';
}
