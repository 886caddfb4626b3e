// Self-contained HTML report for `bench compare`: inline SVG plots for both runs (TTFT, TPOT and ITL
// CDFs, output tokens/s per 1-s bucket, requests in flight), the side-by-side table, and the data
// embedded as JSON. No scripts from anywhere, no network. Plots carry data-plot="<id>".
import { compareSections, ratio } from './compare-table.js';
import { inflightSteps } from './metrics.js';
import { fixed } from './py-format.js';
import type { BlockInput } from './result-block.js';
import type { RequestRecord } from './types.js';
import { cdfPoints, esc, lineChart, thinSteps, type Series } from './svg-chart.js';

export interface ReportRun {
  label: string;
  url: string;
  records: readonly RequestRecord[];
  block: BlockInput;
}

export const runColors = ['#1f77b4', '#ff7f0e'] as const;
export const plotIds = ['ttft-cdf', 'tpot-cdf', 'itl-cdf', 'output-throughput', 'inflight-requests'] as const;

function seriesFor(run: ReportRun, color: string) {
  const ok = run.records.filter((r) => r.success);
  const t0 = ok.length ? Math.min(...ok.map((r) => r.startTime)) : 0;
  const tpots: number[] = [];
  run.records.forEach((r, i) => {
    const out = run.block.metrics.actualOutputLens[i] ?? r.outputTokens;
    if (r.success && out > 1) tpots.push(((r.latency - r.ttft) / (out - 1)) * 1000);
  });
  const s = (points: Array<[number, number]>, step = false): Series => ({ name: run.label, color, points, step });
  const tps = run.block.metrics.tokensPerSecond;
  return {
    ttft: s(cdfPoints(ok.map((r) => r.ttft * 1000))),
    tpot: s(cdfPoints(tpots)),
    itl: s(cdfPoints(ok.flatMap((r) => r.itl.map((g) => g * 1000)))),
    // bucket i covers [i, i+1): a final point closes the last step
    throughput: s(tps.length ? [...tps.map((v, i) => [i, v] as [number, number]), [tps.length, tps[tps.length - 1]!]] : [], true),
    inflight: s(thinSteps([[0, 0], ...inflightSteps(ok, t0)]), true),
  };
}

function table(a: ReportRun, b: ReportRun): string {
  const rows: string[] = [`<tr><th>Metric</th><th>${esc(a.label)}</th><th>${esc(b.label)}</th><th>B/A</th></tr>`];
  for (const sec of compareSections(a.block, b.block)) {
    if (sec.header) rows.push(`<tr class="section"><th colspan="4">${esc(sec.header)}</th></tr>`);
    for (const r of sec.rows) {
      const f = (v: number) => (r.isInt ? String(v) : fixed(v));
      rows.push(`<tr><td>${esc(r.label)}</td><td>${f(r.a)}</td><td>${f(r.b)}</td><td>${ratio(r.a, r.b)}</td></tr>`);
    }
  }
  return `<table data-table="results">${rows.join('')}</table>`;
}

export function renderReport(a: ReportRun, b: ReportRun, meta: { title: string; workload: string; date: string }): string {
  const sa = seriesFor(a, runColors[0]);
  const sb = seriesFor(b, runColors[1]);
  const plots = [
    lineChart({ id: 'ttft-cdf', title: 'Time to first token (CDF)', xLabel: 'TTFT (ms)', yLabel: 'fraction of requests', series: [sa.ttft, sb.ttft], yMin: 0, yMax: 1 }),
    lineChart({ id: 'tpot-cdf', title: 'Time per output token (CDF)', xLabel: 'TPOT (ms)', yLabel: 'fraction of requests', series: [sa.tpot, sb.tpot], yMin: 0, yMax: 1 }),
    lineChart({ id: 'itl-cdf', title: 'Inter-token latency (CDF)', xLabel: 'ITL (ms)', yLabel: 'fraction of gaps', series: [sa.itl, sb.itl], yMin: 0, yMax: 1 }),
    lineChart({ id: 'output-throughput', title: 'Output throughput over time', xLabel: 'time since first request (s)', yLabel: 'tokens per 1-s bucket', series: [sa.throughput, sb.throughput] }),
    lineChart({ id: 'inflight-requests', title: 'Requests in flight over time', xLabel: 'time since first request (s)', yLabel: 'requests', series: [sa.inflight, sb.inflight] }),
  ];
  const data = {
    meta,
    runs: [a, b].map((r, i) => ({
      label: r.label, url: r.url, color: runColors[i],
      series: i === 0 ? sa : sb,
    })),
  };
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(meta.title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} .meta{color:#555;margin-bottom:16px}
.plots{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0;border:1px solid #ddd;padding:8px}
figcaption{font-weight:600;margin-bottom:4px} svg text{font-size:11px;fill:#333}
.grid{stroke:#eee} .axis{stroke:#888}
table{border-collapse:collapse;margin-top:16px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left} tr.section th{background:#f4f4f4;text-align:center}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
</style></head><body>
<h1>${esc(meta.title)}</h1>
<div class="meta">${esc(meta.workload)} · ${esc(meta.date)}<br>
<span class="swatch" style="background:${runColors[0]}"></span>A = ${esc(a.label)} (${esc(a.url)})
<span class="swatch" style="background:${runColors[1]}"></span>B = ${esc(b.label)} (${esc(b.url)})</div>
<div class="plots">${plots.join('\n')}</div>
${table(a, b)}
<script type="application/json" id="bench-data">${json}</script>
</body></html>
`;
}
