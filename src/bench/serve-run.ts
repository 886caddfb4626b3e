// `pdserve bench serve` end to end: probe the server, resolve model and tokenizer, build the seeded
// workload, run it, print the result block, save the JSON. `bench compare` reuses the pieces.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Agent } from 'undici';
import type { Tokenizer } from '../tokenizer/types.js';
import { arrivalOffsets } from './arrivals.js';
import type { BenchConfig, TargetConfig, WorkloadConfig } from './config.js';
import { calculateMetrics } from './metrics.js';
import { Progress } from './progress.js';
import { pyFloatStr } from './py-format.js';
import { formatResultBlock, type BlockInput } from './result-block.js';
import { buildResultJson, dateStamp, resultFileName } from './result-json.js';
import type { TracedRecord } from './request.js';
import { Rng } from '../util/rng.js';
import { runBenchmark } from './runner.js';
import { getSamples } from './samples.js';
import { probeServer } from './server-probe.js';
import { loadBenchTokenizer } from './tokenizer-source.js';
import type { BenchmarkMetrics, SampleRequest } from './types.js';

export type Print = (line: string) => void;

export interface Workload {
  tokenizer: Tokenizer;
  tokenizerId: string;
  samples: SampleRequest[];
  arrivals: number[];
}

export interface ModelRef {
  /** Sent in request bodies. */
  name: string;
  /** Recorded as model_id. */
  id: string;
}

/** --model, else the server's first model. */
export async function resolveTarget(t: TargetConfig, print: Print): Promise<ModelRef> {
  const probe = await probeServer(t.baseUrl);
  if (t.model) return { name: t.servedModelName ?? t.model, id: t.model };
  if (!probe.modelName) throw new Error(`the server at ${t.baseUrl} lists no models; pass --model`);
  print(`Model not specified, fetched first model from server: ${probe.modelName} (id ${probe.modelId})`);
  return { name: t.servedModelName ?? probe.modelName, id: probe.modelId ?? probe.modelName };
}

export async function prepareWorkload(w: WorkloadConfig, t: TargetConfig, modelId: string, print: Print): Promise<Workload> {
  const tokenizerId = t.tokenizer ?? modelId;
  const tokenizer = await loadBenchTokenizer(tokenizerId);
  print(`Sampling ${w.numPrompts} prompts (${w.datasetName} dataset)...`);
  const { requests, mismatch } = await getSamples(tokenizer, tokenizerId, w, t);
  if (mismatch) print(`WARNING: across all generated prompts there were ${Math.abs(mismatch)} ${mismatch > 0 ? 'more' : 'fewer'} tokens than expected after decoding and re-encoding`);
  const arrivals = arrivalOffsets(requests.length, w.requestRate, w.burstiness, new Rng(w.seed));
  return { tokenizer, tokenizerId, samples: requests, arrivals };
}

export interface ServeRun {
  records: TracedRecord[];
  metrics: BenchmarkMetrics;
  durationS: number;
  t0: number;
  interrupted: boolean;
  block: string;
  blockInput: BlockInput;
  json: Record<string, unknown>;
}

/** One measured run against one server; prints progress, errors and the result block. */
export async function runServe(cfg: BenchConfig, wl: Workload, model: ModelRef, print: Print, stop?: AbortSignal): Promise<ServeRun> {
  const url = new URL(cfg.baseUrl);
  const basePath = url.pathname.replace(/\/+$/, '');
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, pipelining: 1 });
  if (cfg.numWarmups) print(`Warming up with ${cfg.numWarmups} requests...`);
  print('Starting main benchmark run...');
  print(`Traffic request rate: ${pyFloatStr(cfg.requestRate)}`);
  print(`Burstiness factor: ${pyFloatStr(cfg.burstiness)} (${cfg.burstiness === 1 ? 'Poisson process' : 'Gamma distribution'})`);
  print(`Maximum request concurrency: ${cfg.maxConcurrency ?? 'None'}`);
  const progress = new Progress(wl.samples.length, process.stderr, cfg.disableTqdm);
  let run;
  try {
    run = await runBenchmark({
      dispatcher, origin: url.origin, path: basePath + cfg.endpoint, chat: cfg.backend === 'openai-chat', model: model.name,
      samples: wl.samples, arrivals: wl.arrivals, maxConcurrency: cfg.maxConcurrency, ignoreEos: cfg.ignoreEos,
      temperature: cfg.temperature, numWarmups: cfg.numWarmups, requestIdPrefix: `bench-${Math.random().toString(16).slice(2, 10)}-`,
      stop, onDone: () => progress.tick(),
    });
  } finally {
    progress.finish();
    await dispatcher.destroy().catch(() => {});
  }
  if (run.interrupted) {
    const aborted = run.records.filter((r) => r.error.startsWith('aborted')).length;
    print(`Interrupted: sent ${run.records.length} of ${wl.samples.length} requests; ${aborted} in-flight requests aborted (counted as failed).`);
  }
  const countTokens = (s: string) => wl.tokenizer.encode(s, { addSpecialTokens: false }).length;
  const metrics = calculateMetrics({ records: run.records, durationS: run.durationS, percentiles: cfg.metricPercentiles, goodput: cfg.goodput, countTokens });
  printErrors(run.records, print);
  const blockInput: BlockInput = {
    metrics, durationS: run.durationS, maxConcurrency: cfg.maxConcurrency, requestRate: cfg.requestRate,
    percentileMetrics: cfg.percentileMetrics, goodputConfigured: Object.keys(cfg.goodput).length > 0,
  };
  const block = formatResultBlock(blockInput);
  print(block.replace(/\n$/, ''));
  const json = buildResultJson({
    date: dateStamp(), backend: cfg.backend, label: cfg.label, modelId: model.id, tokenizerId: wl.tokenizerId,
    numPrompts: cfg.numPrompts, requestRate: cfg.requestRate, burstiness: cfg.burstiness, maxConcurrency: cfg.maxConcurrency,
    durationS: run.durationS, metrics, records: run.records, goodputConfigured: blockInput.goodputConfigured,
    percentileMetrics: cfg.percentileMetrics, saveDetailed: cfg.saveDetailed,
  });
  return { records: run.records, metrics, durationS: run.durationS, t0: run.t0, interrupted: run.interrupted, block, blockInput, json };
}

/** The first 10 distinct errors with their counts (vLLM prints the first 10 errors). */
export function printErrors(records: readonly TracedRecord[], print: Print): void {
  const counts = new Map<string, number>();
  for (const r of records) if (!r.success) counts.set(r.error, (counts.get(r.error) ?? 0) + 1);
  if (!counts.size) return;
  print('Failed requests during benchmark run detected (capping to 10):');
  let i = 0;
  for (const [err, n] of counts) {
    if (i >= 10) break;
    print(`Error ${i++}${n > 1 ? ` (x${n})` : ''}: ${err}`);
  }
}

export function saveResultJson(json: Record<string, unknown>, path: string): void {
  mkdirSync(dirname(path) || '.', { recursive: true });
  writeFileSync(path, JSON.stringify(json));
}

/** `bench serve`: returns the process exit code (0 ok, 130 interrupted). */
export async function benchServe(cfg: BenchConfig, print: Print, stop?: AbortSignal): Promise<number> {
  const model = await resolveTarget(cfg, print);
  const wl = await prepareWorkload(cfg, cfg, model.id, print);
  const run = await runServe(cfg, wl, model, print, stop);
  if (cfg.saveResult) {
    const path = resultFileName({ ...cfg, modelId: model.id, date: String(run.json.date) });
    saveResultJson(run.json, path);
    print(`Saved result to ${path}`);
  }
  return run.interrupted ? 130 : 0;
}
