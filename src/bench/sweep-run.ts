// `pdserve bench sweep`: one seeded workload (same prompts everywhere, or with --fresh-prompts new ones
// per swept value, seed + its index, the same for every target; arrivals re-drawn from the seed per rate) run against each target at each swept value, ascending. After each point the
// sweep JSON and HTML report are rewritten, so Ctrl+C (or a crash) keeps every finished point; the
// point Ctrl+C cut short is discarded, not reported half-done.
import { writeFileSync } from 'node:fs';
import { arrivalOffsets } from './arrivals.js';
import type { BenchConfig } from './config.js';
import { Rng } from '../util/rng.js';
import { pyFloatStr } from './py-format.js';
import { dateStamp, resultFileName } from './result-json.js';
import { prepareWorkload, resolveTarget, runServe, saveResultJson, type ModelRef, type Print } from './serve-run.js';
import type { SweepConfig } from './sweep-config.js';
import { renderSweepReport } from './sweep-report.js';
import { formatSweepSummary, summarizePoint, targetResult, type SweepPoint, type SweepResult } from './sweep-summary.js';

function workloadMeta(w: BenchConfig, preset: string | null, fresh: boolean): Record<string, unknown> {
  return {
    preset, dataset_name: w.datasetName, num_prompts: w.numPrompts, seed: w.seed, fresh_prompts: fresh,
    random_input_len: w.randomInputLen, random_output_len: w.randomOutputLen, random_range_ratio: w.randomRangeRatio,
    burstiness: w.burstiness === Infinity ? 'inf' : w.burstiness,
    request_rate: w.requestRate === Infinity ? 'inf' : w.requestRate, max_concurrency: w.maxConcurrency,
  };
}

/** The config of one point: the target's config with the swept value put in. */
export function pointConfig(cfg: BenchConfig, kind: SweepConfig['kind'], x: number): BenchConfig {
  return kind === 'request_rate' ? { ...cfg, requestRate: x } : { ...cfg, maxConcurrency: x };
}

export function writeSweepOutputs(res: SweepResult, s: SweepConfig, print: Print, quiet = false): void {
  if (s.jsonPath) {
    saveResultJson(res as unknown as Record<string, unknown>, s.jsonPath);
    if (!quiet) print(`Saved sweep result to ${s.jsonPath}`);
  }
  if (s.reportPath) {
    writeFileSync(s.reportPath, renderSweepReport(res));
    if (!quiet) print(`Wrote sweep report to ${s.reportPath}`);
  }
}

/** Returns the exit code: 0 done, 130 interrupted (outputs hold the completed points). */
export async function benchSweep(s: SweepConfig, preset: string | null, print: Print, stop?: AbortSignal): Promise<number> {
  // Every target must answer before anything runs.
  const models: ModelRef[] = [];
  for (const t of s.targets) models.push(await resolveTarget(t.cfg, print));
  const base = s.targets[0]!.cfg;
  const wl = await prepareWorkload(base, base, models[0]!.id, print);
  const countTokens = (x: string) => wl.tokenizer.encode(x, { addSpecialTokens: false }).length;
  const values = [...s.values].sort((a, b) => a - b);
  // with freshPrompts: one workload per swept value (seed + index), shared by the targets
  const workloads = s.freshPrompts
    ? await Promise.all(values.map((_, i) => (i === 0 ? wl : prepareWorkload({ ...base, seed: base.seed + i }, base, models[0]!.id, () => undefined))))
    : values.map(() => wl);
  const points = new Map<string, SweepPoint[]>(s.targets.map((t) => [t.name, []]));
  const res: SweepResult = {
    kind: 'pdserve-bench-sweep', date: dateStamp(), sweep: s.kind, values, slo: base.goodput,
    slo_attainment_target: s.attainmentTarget, workload: workloadMeta(base, preset, !!s.freshPrompts), model_id: models[0]!.id,
    tokenizer_id: wl.tokenizerId, targets: [], interrupted: false, planned_points: values.length * s.targets.length, completed_points: 0,
  };
  const refresh = () => {
    res.targets = s.targets.map((t) => targetResult(t.name, t.cfg.baseUrl, t.gpus, s.kind, points.get(t.name)!, s.attainmentTarget));
    res.completed_points = [...points.values()].reduce((n, p) => n + p.length, 0);
  };
  let cutShort: string | null = null;
  outer: for (let ti = 0; ti < s.targets.length; ti++) {
    const t = s.targets[ti]!;
    for (const [xi, x] of values.entries()) {
      if (stop?.aborted) break outer;
      const pw = workloads[xi]!;
      const cfg = pointConfig(t.cfg, s.kind, x);
      const what = `${t.name} @ ${s.kind === 'request_rate' ? `rate ${pyFloatStr(x)}` : `concurrency ${x}`}`;
      print(`\n=== ${what}: ${t.cfg.baseUrl} ===`);
      const arrivals = arrivalOffsets(pw.samples.length, cfg.requestRate, cfg.burstiness, new Rng(cfg.seed));
      const run = await runServe(cfg, { ...pw, arrivals }, models[ti]!, print, stop);
      if (run.interrupted) {
        cutShort = what;
        break outer;
      }
      points.get(t.name)!.push(summarizePoint({
        x, requestRate: cfg.requestRate, maxConcurrency: cfg.maxConcurrency, records: run.records, durationS: run.durationS, slo: cfg.goodput, countTokens,
      }));
      if (cfg.saveResult && cfg.resultDir) {
        const path = resultFileName({ ...cfg, resultFilename: null, label: t.name, modelId: models[ti]!.id, date: String(run.json.date) });
        saveResultJson({ ...run.json, label: t.name, base_url: cfg.baseUrl }, path);
      }
      refresh();
      writeSweepOutputs(res, s, print, true);
    }
  }
  res.interrupted = !!stop?.aborted;
  refresh();
  print('');
  print(formatSweepSummary(res).replace(/\n$/, ''));
  if (res.interrupted) {
    print(`Interrupted: kept ${res.completed_points} completed point${res.completed_points === 1 ? '' : 's'} of ${res.planned_points}${cutShort ? `; the point in progress (${cutShort}) was discarded` : ''}.`);
  }
  writeSweepOutputs(res, s, print);
  return res.interrupted ? 130 : 0;
}
