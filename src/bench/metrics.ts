// vLLM's calculate_metrics: per-request records -> BenchmarkMetrics. Definitions (anchors §7):
// TTFT = first content chunk - send; ITL = gaps between content chunks, pooled over requests;
// E2EL = last content chunk - send; TPOT = (E2EL - TTFT) / (out - 1) for out > 1; output tokens
// from usage.completion_tokens (tokenizer count of the text when absent); throughputs over the
// benchmark duration; peak output throughput = most content chunks in one 1-s bucket from the first
// send; peak concurrency = sweep line over [send, last chunk) intervals of successful requests.
import { countGood } from './slo.js';
import { mean, median, percentile, std } from './stats.js';
import type { BenchmarkMetrics, GoodputConfig, MetricStats, RequestRecord } from './types.js';

export interface MetricsInput {
  records: readonly RequestRecord[];
  /** Benchmark duration, seconds. */
  durationS: number;
  /** e.g. [99] or [25, 50, 75]. */
  percentiles: readonly number[];
  goodput?: GoodputConfig;
  /** Counts output tokens when a server sent no usage. */
  countTokens?: (text: string) => number;
}

function summarize(valuesS: readonly number[], ps: readonly number[]): MetricStats {
  const sorted = [...valuesS].sort((a, b) => a - b);
  return {
    mean: mean(valuesS) * 1000,
    median: median(sorted, true) * 1000,
    std: std(valuesS) * 1000,
    percentiles: ps.map((p) => [p, percentile(sorted, p, true) * 1000] as [number, number]),
  };
}

export function calculateMetrics(inp: MetricsInput): BenchmarkMetrics {
  const { records, durationS, percentiles: ps } = inp;
  const actualOutputLens: number[] = [];
  const ttfts: number[] = [];
  const tpots: number[] = [];
  const e2els: number[] = [];
  const queueTimes: number[] = [];
  const e2elsWithQueue: number[] = [];
  const itls: number[] = [];
  let totalInput = 0;
  let completed = 0;
  for (const r of records) {
    if (!r.success) {
      actualOutputLens.push(0);
      continue;
    }
    let out = r.outputTokens;
    if (!out) out = inp.countTokens ? inp.countTokens(r.generatedText) : 1;
    actualOutputLens.push(out);
    totalInput += r.promptLen;
    if (out > 1) tpots.push((r.latency - r.ttft) / (out - 1));
    for (const g of r.itl) itls.push(g);
    ttfts.push(r.ttft);
    e2els.push(r.latency);
    queueTimes.push(r.clientQueueTime);
    e2elsWithQueue.push(r.latency + r.clientQueueTime);
    completed++;
  }

  // vLLM counts good requests only when some SLO is given (else request_goodput is null)
  const slo = inp.goodput ?? {};
  const goodCompleted = Object.keys(slo).length ? countGood(records, actualOutputLens, slo) : 0;

  const ok = records.filter((r) => r.success);
  const tokensPerSecond = outputTokensPerSecond(ok);
  const totalOutput = actualOutputLens.reduce((a, b) => a + b, 0);
  return {
    completed,
    failed: records.length - completed,
    totalInput,
    totalOutput,
    requestThroughput: completed / durationS,
    requestGoodput: goodCompleted / durationS,
    outputThroughput: totalOutput / durationS,
    totalTokenThroughput: (totalInput + totalOutput) / durationS,
    ttft: summarize(ttfts, ps),
    tpot: summarize(tpots, ps),
    itl: summarize(itls, ps),
    e2el: summarize(e2els, ps),
    clientQueueTime: summarize(queueTimes, ps),
    e2elIncludingClientQueue: summarize(e2elsWithQueue, ps),
    maxOutputTokensPerS: tokensPerSecond.length ? Math.max(...tokensPerSecond) : 0,
    maxConcurrentRequests: peakConcurrency(ok),
    tokensPerSecond,
    actualOutputLens,
  };
}

/** Content chunks per 1-s bucket, buckets counted from the earliest send (vLLM's tokens_per_second). */
export function outputTokensPerSecond(ok: readonly RequestRecord[]): number[] {
  if (!ok.length) return [];
  let t0 = Infinity;
  let tEnd = -Infinity;
  for (const r of ok) {
    t0 = Math.min(t0, r.startTime);
    tEnd = Math.max(tEnd, r.startTime + r.latency);
  }
  const n = Math.ceil(tEnd - t0) + 1;
  const buckets = new Array<number>(n).fill(0);
  for (const r of ok) {
    let t = r.startTime + r.ttft;
    const add = (x: number) => {
      const b = Math.floor(x - t0);
      if (b >= 0 && b < n) buckets[b]!++;
    };
    add(t);
    for (const g of r.itl) {
      t += g;
      add(t);
    }
  }
  return buckets;
}

/** Max overlap of half-open [start, start+latency) intervals; departures sort before arrivals. */
export function peakConcurrency(ok: readonly RequestRecord[]): number {
  const ev: Array<[number, number]> = [];
  for (const r of ok) {
    ev.push([r.startTime, 1]);
    ev.push([r.startTime + r.latency, -1]);
  }
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let peak = 0;
  for (const [, d] of ev) {
    cur += d;
    if (cur > peak) peak = cur;
  }
  return peak;
}

/** In-flight requests over time as steps [t seconds from t0, count after t] (for reports). */
export function inflightSteps(ok: readonly RequestRecord[], t0: number): Array<[number, number]> {
  const ev: Array<[number, number]> = [];
  for (const r of ok) {
    ev.push([r.startTime - t0, 1]);
    ev.push([r.startTime + r.latency - t0, -1]);
  }
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Array<[number, number]> = [];
  let cur = 0;
  for (const [t, d] of ev) {
    cur += d;
    const last = out[out.length - 1];
    if (last && last[0] === t) last[1] = cur;
    else out.push([t, cur]);
  }
  return out;
}
