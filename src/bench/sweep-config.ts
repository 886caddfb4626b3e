// `bench sweep` options beyond bench serve's: what is swept (request rates or max concurrencies),
// the named targets, GPUs per target, the attainment target and where results go. Validated once.
import { PdsError } from '../util/errors.js';
import { parseTarget, type BenchConfig, type RawOptions, type ReportConfig, type WorkloadConfig } from './config.js';

export type SweepKind = 'request_rate' | 'max_concurrency';

export interface SweepTargetConfig {
  name: string;
  /** The whole bench config for this target (its base URL; the workload is shared). */
  cfg: BenchConfig;
  gpus: number;
}

export interface SweepConfig {
  kind: SweepKind;
  /** Swept values in the order given (rates > 0 finite, or concurrencies >= 1). */
  values: number[];
  targets: SweepTargetConfig[];
  /** Percent of requests that must meet every SLO for a point to count (DistServe: 90). */
  attainmentTarget: number;
  /** Sweep JSON path, or null (not saved). */
  jsonPath: string | null;
  /** HTML report path (default: beside the JSON, .html), or null. */
  reportPath: string | null;
  /** Each swept value gets its own prompts (seed + the value's index; the same for every target), so an
   *  engine's prefix cache cannot serve one point from the prompts of the point before. */
  freshPrompts?: boolean;
}

function bad(msg: string, param: string): never {
  throw new PdsError('PDS_ERR_CONFIG', msg, param);
}

/** "1,2,4" -> [1, 2, 4]; every value checked by `ok`. */
export function parseNumberList(s: string, flag: string, ok: (x: number) => boolean, what: string): number[] {
  const parts = s.split(',').map((x) => x.trim());
  const xs = parts.map(Number);
  if (!parts.length || parts.some((p, i) => p === '' || !ok(xs[i]!))) bad(`${flag} must be a comma list of ${what}, got '${s}'`, flag);
  if (new Set(xs).size !== xs.length) bad(`${flag} lists a value twice: '${s}'`, flag);
  return xs;
}

/** --target NAME=URL (repeatable); a bare URL is named A, B, C... by position. */
export function parseTargets(specs: readonly string[]): Array<{ name: string; url: string }> {
  if (!specs.length) bad('bench sweep needs at least one --target NAME=http://host:port', '--target');
  const out: Array<{ name: string; url: string }> = [];
  specs.forEach((spec, i) => {
    const eq = spec.indexOf('=');
    const named = eq > 0 && !spec.slice(0, eq).includes('/');
    const name = named ? spec.slice(0, eq).trim() : String.fromCharCode(65 + i);
    const url = named ? spec.slice(eq + 1).trim() : spec.trim();
    if (!/^[A-Za-z0-9_.+-]{1,40}$/.test(name)) bad(`--target name '${name}' must be 1-40 letters, digits or _.+-`, '--target');
    if (out.some((t) => t.name === name)) bad(`--target name '${name}' given twice`, '--target');
    out.push({ name, url });
  });
  return out;
}

/** --gpus A=2,B=2 (repeatable, comma lists): GPUs per target, 1 for targets not named. */
export function parseGpus(specs: readonly string[], names: readonly string[]): Map<string, number> {
  const m = new Map(names.map((n) => [n, 1]));
  for (const pair of specs.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const [k, v, extra] = pair.split('=');
    const x = Number(v);
    if (extra !== undefined || !k || !v || !Number.isInteger(x) || x < 1) bad(`invalid --gpus '${pair}': give NAME=COUNT, COUNT an integer >= 1 (e.g. --gpus A=2,B=2)`, '--gpus');
    if (!m.has(k)) bad(`--gpus names '${k}', which is not a --target (targets: ${names.join(', ')})`, '--gpus');
    m.set(k, x);
  }
  return m;
}

/**
 * Builds the sweep config from the raw options and the common bench config (workload + report).
 * `date` names default output files: sweep-<date>.json / .html in --result-dir.
 */
export function parseSweep(o: RawOptions, common: WorkloadConfig & ReportConfig, date: string): SweepConfig {
  const rates = o.requestRates as string | undefined;
  const concs = o.maxConcurrencies as string | undefined;
  if ((rates === undefined) === (concs === undefined)) bad('give exactly one of --request-rates (e.g. 1,2,4) or --max-concurrencies (e.g. 16,32,64)', '--request-rates');
  const kind: SweepKind = rates !== undefined ? 'request_rate' : 'max_concurrency';
  const values = rates !== undefined
    ? parseNumberList(rates, '--request-rates', (x) => Number.isFinite(x) && x > 0, 'finite request rates > 0')
    : parseNumberList(concs!, '--max-concurrencies', (x) => Number.isInteger(x) && x >= 1, 'integers >= 1');
  if (!Object.keys(common.goodput).length) bad('bench sweep needs SLOs: --goodput ttft:MS tpot:MS (e2el:MS)', '--goodput');
  const att = Number(o.sloAttainment ?? 90);
  if (!(att > 0 && att <= 100)) bad(`--slo-attainment must be a percentage in (0, 100], got '${o.sloAttainment}'`, '--slo-attainment');
  const specs = parseTargets((o.target as string[] | undefined) ?? []);
  const gpus = parseGpus((o.gpus as string[] | undefined) ?? [], specs.map((t) => t.name));
  const targets = specs.map((t) => ({ name: t.name, cfg: { ...common, ...parseTarget(o, t.url) }, gpus: gpus.get(t.name)! }));
  const dir = common.resultDir;
  const join = (f: string) => (dir ? `${dir.replace(/\/+$/, '')}/${f}` : f);
  const jsonPath = common.resultFilename ? join(common.resultFilename) : common.saveResult || dir ? join(`sweep-${date}.json`) : null;
  // the report goes beside the JSON unless --report names it
  const reportPath = (o.report as string | undefined) ?? (jsonPath ? jsonPath.replace(/\.json$/i, '') + '.html' : null);
  return { kind, values, targets, attainmentTarget: att, jsonPath, reportPath, freshPrompts: !!o.freshPrompts };
}
