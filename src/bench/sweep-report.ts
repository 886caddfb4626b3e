// Self-contained HTML report of a sweep (built like the compare report: inline SVG, no scripts, no
// network): SLO attainment, P50/P99 TTFT and TPOT, vLLM request goodput and output throughput, each
// against the swept value with every target overlaid (one marker per measured point), SLO lines
// dashed, then the goodput table and the per-point table. Input: the SweepResult JSON alone.
import { fixed } from './py-format.js';
import { esc, lineChart, type Series } from './svg-chart.js';
import { sloText, type SweepPoint, type SweepResult } from './sweep-summary.js';

/** Target colours in order (matplotlib's tab10). */
export const targetColors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'] as const;
export const sloColor = '#555555';
export const sweepPlotIds = ['slo-attainment', 'ttft-p50', 'ttft-p99', 'tpot-p50', 'tpot-p99', 'request-goodput', 'output-throughput'] as const;

export function colorOf(i: number): string {
  return targetColors[i % targetColors.length]!;
}

export function renderSweepReport(r: SweepResult): string {
  const xLabel = r.sweep === 'request_rate' ? 'request rate (req/s)' : 'max concurrency';
  const xs = r.values;
  const xLo = xs.length ? Math.min(...xs) : 0;
  const xHi = xs.length ? Math.max(...xs) : 1;
  const series = (pick: (p: SweepPoint) => number) => r.targets.map((t, i): Series => ({
    name: t.name, color: colorOf(i), markers: true, points: t.points.map((p) => [p.x, pick(p)] as [number, number]),
  }));
  const ref = (name: string, y: number | undefined): Series[] =>
    y === undefined || !Number.isFinite(y) ? [] : [{ name, color: sloColor, dashed: true, points: [[xLo, y], [xHi, y]] }];
  const chart = (id: (typeof sweepPlotIds)[number], title: string, yLabel: string, s: Series[], yMin?: number, yMax?: number) =>
    lineChart({ id, title, xLabel, yLabel, series: s, yMin, yMax });
  const plots = [
    chart('slo-attainment', `SLO attainment (${sloText(r.slo)})`, '% of requests meeting every SLO',
      [...series((p) => p.slo_attainment), ...ref(`${r.slo_attainment_target}% target`, r.slo_attainment_target)], 0, 100),
    chart('ttft-p50', 'P50 time to first token', 'TTFT (ms)', [...series((p) => p.p50_ttft_ms), ...ref('TTFT SLO', r.slo.ttft)]),
    chart('ttft-p99', 'P99 time to first token', 'TTFT (ms)', [...series((p) => p.p99_ttft_ms), ...ref('TTFT SLO', r.slo.ttft)]),
    chart('tpot-p50', 'P50 time per output token', 'TPOT (ms)', [...series((p) => p.p50_tpot_ms), ...ref('TPOT SLO', r.slo.tpot)]),
    chart('tpot-p99', 'P99 time per output token', 'TPOT (ms)', [...series((p) => p.p99_tpot_ms), ...ref('TPOT SLO', r.slo.tpot)]),
    chart('request-goodput', 'Request goodput (vLLM: good requests / duration)', 'req/s', series((p) => p.request_goodput)),
    chart('output-throughput', 'Output token throughput', 'tok/s', series((p) => p.output_throughput)),
  ];
  const swatch = (i: number) => `<span class="swatch" style="background:${colorOf(i)}"></span>`;
  const xName = r.sweep === 'request_rate' ? 'rate' : 'concurrency';
  const first = r.targets[0];
  const goodRows = r.targets.map((t, i) => {
    const rel = first && first.goodput_per_gpu > 0 ? fixed(t.goodput_per_gpu / first.goodput_per_gpu) : '-';
    return `<tr data-target="${esc(t.name)}"><td>${swatch(i)}${esc(t.name)}</td><td>${esc(t.url)}</td><td>${t.gpus}</td>` +
      `<td>${fixed(t.goodput)}</td><td>${t.goodput_at ?? 'none'}</td><td>${fixed(t.goodput_per_gpu)}</td><td>${rel}</td>` +
      `<td>${fixed(t.max_request_goodput)}</td><td>${fixed(t.max_request_goodput_per_gpu)}</td></tr>`;
  });
  const goodTable = `<table data-table="goodput"><tr><th>Target</th><th>URL</th><th>GPUs</th><th>Goodput (req/s)</th>` +
    `<th>at ${xName}</th><th>Goodput per GPU</th><th>per GPU vs ${esc(first?.name ?? '-')}</th><th>Max vLLM request goodput</th><th>per GPU</th></tr>${goodRows.join('')}</table>`;
  const cols: Array<[string, (p: SweepPoint) => string]> = [
    [xName, (p) => String(p.x)], ['requests', (p) => String(p.num_requests)], ['failed', (p) => String(p.failed)],
    ['SLO attainment (%)', (p) => fixed(p.slo_attainment)], ['P50 TTFT (ms)', (p) => fixed(p.p50_ttft_ms)], ['P99 TTFT (ms)', (p) => fixed(p.p99_ttft_ms)],
    ['P50 TPOT (ms)', (p) => fixed(p.p50_tpot_ms)], ['P99 TPOT (ms)', (p) => fixed(p.p99_tpot_ms)], ['Request throughput (req/s)', (p) => fixed(p.request_throughput)],
    ['Output throughput (tok/s)', (p) => fixed(p.output_throughput)], ['Request goodput (req/s)', (p) => fixed(p.request_goodput)],
  ];
  const pointRows = r.targets.flatMap((t, i) => t.points.map((p) =>
    `<tr data-target="${esc(t.name)}" data-x="${p.x}"${p.slo_attainment + 1e-9 >= r.slo_attainment_target ? '' : ' class="miss"'}><td>${swatch(i)}${esc(t.name)}</td>${cols.map(([, f]) => `<td>${f(p)}</td>`).join('')}</tr>`));
  const pointTable = `<table data-table="points"><tr><th>Target</th>${cols.map(([h]) => `<th>${esc(h)}</th>`).join('')}</tr>${pointRows.join('')}</table>`;
  const best = [...r.targets].sort((a, b) => b.goodput_per_gpu - a.goodput_per_gpu)[0];
  const verdict = r.targets.length > 1 && best
    ? `<p data-verdict>Highest goodput per GPU: <b>${esc(best.name)}</b> (${fixed(best.goodput_per_gpu)} req/s per GPU).</p>` : '';
  const w = r.workload;
  const workload = `${w.preset ? `preset ${w.preset}, ` : ''}${w.dataset_name} dataset, ${w.num_prompts} prompts, input ${w.random_input_len} / output ${w.random_output_len} tokens, ` +
    `burstiness ${w.burstiness}, seed ${w.seed}, model ${r.model_id}; swept ${r.sweep === 'request_rate' ? 'request rate' : 'max concurrency'} ${r.values.join(', ')}`;
  const warn = r.interrupted ? `<p class="warn" data-interrupted>Interrupted: ${r.completed_points} of ${r.planned_points} points completed; only those are shown.</p>` : '';
  const legend = r.targets.map((t, i) => `${swatch(i)}${esc(t.name)} (${esc(t.url)}, ${t.gpus} GPU${t.gpus > 1 ? 's' : ''})`).join(' ');
  const json = JSON.stringify(r).replace(/</g, '\\u003c');
  const title = `pdserve bench sweep: ${r.targets.map((t) => t.name).join(' vs ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:20px 0 4px} .meta{color:#555;margin-bottom:16px}
.plots{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0;border:1px solid #ddd;padding:8px}
figcaption{font-weight:600;margin-bottom:4px} svg text{font-size:11px;fill:#333}
.grid{stroke:#eee} .axis{stroke:#888} .warn{color:#a00;font-weight:600}
table{border-collapse:collapse;margin-top:8px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left} tr.miss td{color:#a00}
.swatch{display:inline-block;width:12px;height:12px;margin:0 4px 0 8px;vertical-align:middle}
</style></head><body>
<h1>${esc(title)}</h1>
<div class="meta">${esc(workload)} · SLOs: ${esc(sloText(r.slo))} · attainment target ${r.slo_attainment_target}% · ${esc(r.date)}<br>${legend}</div>
${warn}
<h2>Goodput</h2>
<p>DistServe's goodput: the highest ${r.sweep === 'request_rate' ? 'request rate' : 'concurrency (its measured request throughput)'} at which it and every lower point have
at least ${r.slo_attainment_target}% of requests meeting every SLO. vLLM's request goodput (good requests / duration) is per point.</p>
${goodTable}
${verdict}
<div class="plots">${plots.join('\n')}</div>
<h2>Points</h2>
${pointTable}
<script type="application/json" id="sweep-data">${json}</script>
</body></html>
`;
}
