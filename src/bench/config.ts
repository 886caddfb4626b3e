// One validated config for a `bench serve` run (and each side of `bench compare`), built once from
// the CLI options; defaults are vLLM's (`vllm bench serve`).
import { PdsError } from '../util/errors.js';
import { percentileMetricNames, type GoodputConfig, type PercentileMetric } from './types.js';

export type DatasetName = 'random' | 'sharegpt' | 'prefix_repetition' | 'custom';
export const datasetNames: readonly DatasetName[] = ['random', 'sharegpt', 'prefix_repetition', 'custom'];

export interface WorkloadConfig {
  datasetName: DatasetName;
  datasetPath: string | null;
  numPrompts: number;
  seed: number;
  randomInputLen: number;
  randomOutputLen: number;
  randomRangeRatio: number;
  randomPrefixLen: number;
  prefixRepetitionPrefixLen: number;
  prefixRepetitionSuffixLen: number;
  prefixRepetitionNumPrefixes: number;
  prefixRepetitionOutputLen: number;
  sharegptOutputLen: number | null;
  customOutputLen: number;
  skipChatTemplate: boolean;
  disableShuffle: boolean;
  requestRate: number; // Infinity = all at once
  burstiness: number;
  maxConcurrency: number | null;
  ignoreEos: boolean;
  numWarmups: number;
  temperature: number | null;
}

export interface ReportConfig {
  percentileMetrics: PercentileMetric[];
  metricPercentiles: number[];
  goodput: GoodputConfig;
  saveResult: boolean;
  saveDetailed: boolean;
  resultDir: string | null;
  resultFilename: string | null;
  label: string | null;
  disableTqdm: boolean;
}

export interface TargetConfig {
  baseUrl: string; // no trailing slash
  endpoint: string; // /v1/completions | /v1/chat/completions
  backend: 'openai' | 'openai-chat';
  model: string | null; // null: first model from /v1/models
  servedModelName: string | null;
  tokenizer: string | null; // null: the model id
}

export type BenchConfig = WorkloadConfig & ReportConfig & TargetConfig;

/** Raw commander values (strings unless commander parsed them). */
export type RawOptions = Record<string, unknown>;

function bad(msg: string, param: string): never {
  throw new PdsError('PDS_ERR_CONFIG', msg, param);
}

function num(o: RawOptions, key: string, flag: string, opts: { int?: boolean; min?: number; allowInf?: boolean } = {}): number {
  const v = o[key];
  const s = String(v).trim().toLowerCase();
  const x = opts.allowInf && (s === 'inf' || s === 'infinity') ? Infinity : Number(v);
  if (typeof v === 'boolean' || s === '' || Number.isNaN(x)) bad(`${flag} must be a number, got '${v}'`, flag);
  if (opts.int && x !== Infinity && !Number.isInteger(x)) bad(`${flag} must be an integer, got '${v}'`, flag);
  if (opts.min !== undefined && x < opts.min) bad(`${flag} must be >= ${opts.min}, got ${v}`, flag);
  return x;
}

/**
 * vLLM's parse_goodput + check_goodput_args: "KEY:VALUE" pairs, KEY in ttft | tpot | e2el, VALUE a
 * non-negative number of milliseconds (Python float syntax, so "inf" is allowed; NaN is refused
 * here, where vLLM would silently count no request as good). A repeated key: the last one wins.
 */
export function parseGoodput(pairs: readonly string[] | undefined): GoodputConfig {
  const out: GoodputConfig = {};
  for (const pair of pairs ?? []) {
    const parts = pair.split(':');
    const [k, v] = parts;
    const s = (v ?? '').trim().toLowerCase();
    const x = s === 'inf' || s === '+inf' || s === 'infinity' ? Infinity : Number(s);
    if (parts.length !== 2 || s === '' || Number.isNaN(x)) {
      bad(`invalid --goodput '${pair}': give KEY:VALUE pairs, KEY one of ttft, tpot, e2el and VALUE a number of milliseconds (e.g. --goodput ttft:1000 tpot:25)`, '--goodput');
    }
    if (k !== 'ttft' && k !== 'tpot' && k !== 'e2el') bad(`invalid --goodput metric '${k}' in '${pair}': use ttft, tpot or e2el`, '--goodput');
    if (x < 0) bad(`invalid --goodput value '${pair}': the SLO must be >= 0 ms`, '--goodput');
    out[k] = x;
  }
  return out;
}

export function parseWorkload(o: RawOptions): WorkloadConfig {
  const datasetName = String(o.datasetName ?? 'random') as DatasetName;
  if (!datasetNames.includes(datasetName)) bad(`--dataset-name must be one of ${datasetNames.join(', ')}`, '--dataset-name');
  const datasetPath = (o.datasetPath as string | undefined) ?? null;
  if ((datasetName === 'random' || datasetName === 'prefix_repetition') && datasetPath) {
    bad(`cannot use '${datasetName}' dataset with --dataset-path; use --dataset-name sharegpt or custom for ${datasetPath}`, '--dataset-path');
  }
  if ((datasetName === 'sharegpt' || datasetName === 'custom') && !datasetPath) bad(`--dataset-name ${datasetName} needs --dataset-path`, '--dataset-path');
  const maxConcurrency = o.maxConcurrency === undefined ? null : num(o, 'maxConcurrency', '--max-concurrency', { int: true, min: 1 });
  const rate = num(o, 'requestRate', '--request-rate', { allowInf: true });
  if (!(rate > 0)) bad('--request-rate must be > 0 (or inf)', '--request-rate');
  const burstiness = num(o, 'burstiness', '--burstiness', { allowInf: true });
  if (!(burstiness > 0)) bad('--burstiness must be > 0', '--burstiness');
  const ratio = num(o, 'randomRangeRatio', '--random-range-ratio', { min: 0 });
  if (ratio >= 1) bad('--random-range-ratio must be in [0, 1)', '--random-range-ratio');
  return {
    datasetName,
    datasetPath,
    numPrompts: num(o, 'numPrompts', '--num-prompts', { int: true, min: 1 }),
    seed: num(o, 'seed', '--seed', { int: true }),
    randomInputLen: num(o, 'randomInputLen', '--random-input-len', { int: true, min: 1 }),
    randomOutputLen: num(o, 'randomOutputLen', '--random-output-len', { int: true, min: 1 }),
    randomRangeRatio: ratio,
    randomPrefixLen: num(o, 'randomPrefixLen', '--random-prefix-len', { int: true, min: 0 }),
    prefixRepetitionPrefixLen: num(o, 'prefixRepetitionPrefixLen', '--prefix-repetition-prefix-len', { int: true, min: 0 }),
    prefixRepetitionSuffixLen: num(o, 'prefixRepetitionSuffixLen', '--prefix-repetition-suffix-len', { int: true, min: 0 }),
    prefixRepetitionNumPrefixes: num(o, 'prefixRepetitionNumPrefixes', '--prefix-repetition-num-prefixes', { int: true, min: 1 }),
    prefixRepetitionOutputLen: num(o, 'prefixRepetitionOutputLen', '--prefix-repetition-output-len', { int: true, min: 1 }),
    sharegptOutputLen: o.sharegptOutputLen === undefined ? null : num(o, 'sharegptOutputLen', '--sharegpt-output-len', { int: true, min: 1 }),
    customOutputLen: num(o, 'customOutputLen', '--custom-output-len', { int: true, min: 1 }),
    skipChatTemplate: !!o.skipChatTemplate,
    disableShuffle: !!o.disableShuffle,
    requestRate: rate,
    burstiness,
    maxConcurrency,
    // vLLM: the random dataset always ignores EOS so generation runs to the sampled length.
    ignoreEos: !!o.ignoreEos || datasetName === 'random',
    numWarmups: num(o, 'numWarmups', '--num-warmups', { int: true, min: 0 }),
    temperature: o.temperature === undefined ? null : num(o, 'temperature', '--temperature', { min: 0 }),
  };
}

export function parseReport(o: RawOptions): ReportConfig {
  const pm = String(o.percentileMetrics ?? 'ttft,tpot,itl').split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of pm) {
    if (!percentileMetricNames.includes(m as PercentileMetric)) bad(`--percentile-metrics: unknown metric '${m}' (allowed: ${percentileMetricNames.join(', ')})`, '--percentile-metrics');
  }
  const ps = String(o.metricPercentiles ?? '99').split(',').map((s) => Number(s.trim()));
  for (const p of ps) if (!(p >= 0 && p <= 100)) bad(`--metric-percentiles must be numbers in [0, 100], got '${o.metricPercentiles}'`, '--metric-percentiles');
  return {
    percentileMetrics: pm as PercentileMetric[],
    metricPercentiles: ps,
    goodput: parseGoodput(o.goodput as string[] | undefined),
    saveResult: !!o.saveResult,
    saveDetailed: !!o.saveDetailed,
    resultDir: (o.resultDir as string | undefined) ?? null,
    resultFilename: (o.resultFilename as string | undefined) ?? null,
    label: (o.label as string | undefined) ?? null,
    disableTqdm: !!o.disableTqdm,
  };
}

/** --base-url wins over --host/--port (vLLM's rule). */
export function parseTarget(o: RawOptions, baseUrlOverride?: string): TargetConfig {
  let baseUrl = baseUrlOverride ?? (o.baseUrl as string | undefined);
  if (!baseUrl) {
    const host = String(o.host ?? '127.0.0.1');
    const port = num(o, 'port', '--port', { int: true, min: 1 });
    baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  try {
    const u = new URL(baseUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
  } catch {
    bad(`invalid base URL '${baseUrl}' (expected http://host:port)`, '--base-url');
  }
  baseUrl = baseUrl.replace(/\/+$/, '');
  const endpoint = String(o.endpoint ?? '/v1/completions');
  let backend: TargetConfig['backend'];
  if (endpoint.endsWith('/chat/completions')) backend = 'openai-chat';
  else if (endpoint.endsWith('/completions')) backend = 'openai';
  else bad(`--endpoint must end with /completions or /chat/completions, got '${endpoint}'`, '--endpoint');
  return {
    baseUrl, endpoint, backend,
    model: (o.model as string | undefined) ?? null,
    servedModelName: (o.servedModelName as string | undefined) ?? null,
    tokenizer: (o.tokenizer as string | undefined) ?? null,
  };
}
