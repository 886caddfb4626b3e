import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calculateMetrics } from './metrics.js';
import { formatCompareTable, ratio } from './compare-table.js';
import type { BlockInput } from './result-block.js';
import { renderReport, plotIds } from './report-html.js';
import type { RequestRecord } from './types.js';

function rec(start: number, ttft: number, itl: number[]): RequestRecord {
  const latency = ttft + itl.reduce((a, b) => a + b, 0);
  return { success: true, startTime: start, ttft, itl, latency, outputTokens: itl.length + 1, promptLen: 4, generatedText: '', error: '', clientQueueTime: 0 };
}
function block(records: RequestRecord[], duration: number): BlockInput {
  return {
    metrics: calculateMetrics({ records, durationS: duration, percentiles: [99] }), durationS: duration,
    maxConcurrency: 2, requestRate: Infinity, percentileMetrics: ['ttft', 'tpot', 'itl'], goodputConfigured: false,
  };
}
const ra = [rec(0, 0.25, [0.125, 0.125]), rec(0.5, 0.25, [0.125])];
const rb = [rec(0, 0.5, [0.25, 0.25]), rec(0.5, 0.5, [0.25])];

test('side-by-side table: two value columns and B/A', () => {
  const t = formatCompareTable(block(ra, 2), block(rb, 4), 'disagg', 'colocated').split('\n');
  assert.match(t[0]!, /^=+ Serving Benchmark Comparison =+$/);
  assert.equal(t[0]!.length, 40 + 1 + 12 + 1 + 12 + 1 + 8);
  assert.ok(t.includes(`${'Successful requests:'.padEnd(40)} ${'2'.padEnd(12)} ${'2'.padEnd(12)} ${'1.00'.padEnd(8)}`));
  assert.ok(t.includes(`${'Mean TTFT (ms):'.padEnd(40)} ${'250.00'.padEnd(12)} ${'500.00'.padEnd(12)} ${'2.00'.padEnd(8)}`));
  assert.ok(t.includes(`${'Request throughput (req/s):'.padEnd(40)} ${'1.00'.padEnd(12)} ${'0.50'.padEnd(12)} ${'0.50'.padEnd(8)}`));
  assert.ok(t.includes(`${'Failed requests:'.padEnd(40)} ${'0'.padEnd(12)} ${'0'.padEnd(12)} ${'-'.padEnd(8)}`));
  assert.equal(ratio(0, 1), '-');
});

test('HTML report: every plot with one series per run, escaped labels, data embedded, no scripts', () => {
  const html = renderReport(
    { label: 'a<b>', url: 'http://x', records: ra, block: block(ra, 2) },
    { label: 'colocated', url: 'http://y', records: rb, block: block(rb, 4) },
    { title: 't', workload: 'w', date: 'd' },
  );
  for (const id of plotIds) {
    const fig = html.slice(html.indexOf(`data-plot="${id}"`));
    const svg = fig.slice(0, fig.indexOf('</figure>'));
    assert.equal((svg.match(/<path data-series=/g) ?? []).length, 2, id);
  }
  assert.ok(html.includes('a&lt;b&gt;') && !html.includes('<b>'));
  assert.doesNotMatch(html, /<script(?! type="application\/json")/);
  const data = JSON.parse(html.slice(html.indexOf('id="bench-data">') + 16, html.lastIndexOf('</script>')));
  assert.equal(data.runs.length, 2);
  assert.deepEqual(data.runs[0].series.ttft.points.map((p: number[]) => p[0]), [250, 250]);
});
