// The JSON result `vllm bench serve --save-result` writes: same keys, same order, same file name rule.
import { join } from 'node:path';
import { pyFloatStr, percentileWord } from './py-format.js';
import { metricSections, sectionApplies, statsOf } from './result-block.js';
import type { BenchmarkMetrics, PercentileMetric } from './types.js';
import type { TracedRecord } from './request.js';

export interface ResultJsonInput {
  date: string; // %Y%m%d-%H%M%S
  backend: string;
  label: string | null;
  modelId: string;
  tokenizerId: string;
  numPrompts: number;
  requestRate: number;
  burstiness: number;
  maxConcurrency: number | null;
  durationS: number;
  metrics: BenchmarkMetrics;
  records: readonly TracedRecord[];
  goodputConfigured: boolean;
  percentileMetrics: readonly PercentileMetric[];
  saveDetailed: boolean;
}

/** datetime.now().strftime("%Y%m%d-%H%M%S") */
export function dateStamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export function buildResultJson(r: ResultJsonInput): Record<string, unknown> {
  const m = r.metrics;
  const recs = r.records;
  const out: Record<string, unknown> = {
    date: r.date,
    endpoint_type: r.backend,
    backend: r.backend,
    label: r.label,
    model_id: r.modelId,
    tokenizer_id: r.tokenizerId,
    num_prompts: r.numPrompts,
    request_rate: r.requestRate === Infinity ? 'inf' : r.requestRate,
    burstiness: r.burstiness === Infinity ? 'inf' : r.burstiness,
    max_concurrency: r.maxConcurrency,
    duration: r.durationS,
    completed: m.completed,
    failed: m.failed,
    total_input_tokens: m.totalInput,
    total_output_tokens: m.totalOutput,
    request_throughput: m.requestThroughput,
    request_goodput: r.goodputConfigured ? m.requestGoodput : null,
    output_throughput: m.outputThroughput,
    total_token_throughput: m.totalTokenThroughput,
  };
  if (r.saveDetailed) {
    out.input_lens = recs.map((x) => x.promptLen);
    out.output_lens = m.actualOutputLens;
    out.ttfts = recs.map((x) => x.ttft);
    out.itls = recs.map((x) => x.itl);
  }
  out.latencies = recs.map((x) => x.latency);
  if (r.saveDetailed) out.start_times = recs.map((x) => x.startTime);
  out.queue_times = recs.map((x) => x.clientQueueTime);
  if (r.saveDetailed) {
    out.generated_texts = recs.map((x) => x.generatedText);
    out.errors = recs.map((x) => x.error);
  }
  out.max_output_tokens_per_s = m.maxOutputTokensPerS;
  out.max_concurrent_requests = m.maxConcurrentRequests;
  out.rtfx = 0;
  for (const [k] of metricSections) {
    if (!r.percentileMetrics.includes(k) || !sectionApplies(k, r.maxConcurrency, r.requestRate)) continue;
    const s = statsOf(m, k);
    out[`mean_${k}_ms`] = s.mean;
    out[`median_${k}_ms`] = s.median;
    out[`std_${k}_ms`] = s.std;
    for (const [p, v] of s.percentiles) out[`p${percentileWord(p)}_${k}_ms`] = v;
  }
  return out;
}

/** vLLM's compute_result_filename: {label}-{rate}qps[-concurrency{N}]-{model basename}-{date}.json */
export function resultFileName(o: {
  label: string | null; backend: string; requestRate: number; maxConcurrency: number | null;
  modelId: string; date: string; resultFilename: string | null; resultDir: string | null;
}): string {
  const base = o.modelId.split('/').filter(Boolean).pop() ?? o.modelId;
  const conc = o.maxConcurrency !== null ? `-concurrency${o.maxConcurrency}` : '';
  const name = o.resultFilename ?? `${o.label ?? o.backend}-${pyFloatStr(o.requestRate)}qps${conc}-${base}-${o.date}.json`;
  return o.resultDir ? join(o.resultDir, name) : name;
}
