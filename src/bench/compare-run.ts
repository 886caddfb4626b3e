// `pdserve bench compare`: the same seeded workload against A, then B; both result blocks, a
// side-by-side table with B/A ratios, both JSON results saved, and optionally the HTML report.
import { writeFileSync } from 'node:fs';
import type { BenchConfig } from './config.js';
import { formatCompareTable } from './compare-table.js';
import { pyFloatStr } from './py-format.js';
import { renderReport } from './report-html.js';
import { dateStamp, resultFileName } from './result-json.js';
import { prepareWorkload, resolveTarget, runServe, saveResultJson, type Print, type ServeRun } from './serve-run.js';

export interface CompareConfig {
  a: BenchConfig;
  b: BenchConfig;
  labelA: string;
  labelB: string;
  reportPath: string | null;
}

export async function benchCompare(c: CompareConfig, print: Print, stop?: AbortSignal): Promise<number> {
  // Both servers must answer before anything runs.
  const modelA = await resolveTarget(c.a, print);
  const modelB = await resolveTarget(c.b, print);
  const wl = await prepareWorkload(c.a, c.a, modelA.id, print);
  const runs: ServeRun[] = [];
  for (const [cfg, model, label] of [[c.a, modelA, c.labelA], [c.b, modelB, c.labelB]] as const) {
    if (stop?.aborted) break;
    print(`\n=== ${label}: ${cfg.baseUrl} ===`);
    runs.push(await runServe(cfg, wl, model, print, stop));
    const run = runs[runs.length - 1]!;
    const path = resultFileName({ ...cfg, label, modelId: model.id, date: String(run.json.date) });
    saveResultJson({ ...run.json, label, base_url: cfg.baseUrl }, path);
    print(`Saved result to ${path}`);
  }
  if (runs.length < 2) return 130;
  const [ra, rb] = runs as [ServeRun, ServeRun];
  print('');
  print(formatCompareTable(ra.blockInput, rb.blockInput, c.labelA, c.labelB).replace(/\n$/, ''));
  if (c.reportPath) {
    const w = c.a;
    const workload = `${w.datasetName} dataset, ${w.numPrompts} prompts, request rate ${pyFloatStr(w.requestRate)}, burstiness ${pyFloatStr(w.burstiness)}, ` +
      `max concurrency ${w.maxConcurrency ?? 'None'}, seed ${w.seed}, model ${modelA.name}`;
    const html = renderReport(
      { label: c.labelA, url: c.a.baseUrl, records: ra.records, block: ra.blockInput },
      { label: c.labelB, url: c.b.baseUrl, records: rb.records, block: rb.blockInput },
      { title: `pdserve bench compare: ${c.labelA} vs ${c.labelB}`, workload, date: dateStamp() },
    );
    writeFileSync(c.reportPath, html);
    print(`Wrote report to ${c.reportPath}`);
  }
  return ra.interrupted || rb.interrupted ? 130 : 0;
}
