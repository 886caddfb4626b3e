// Hand-computed trace -> exact metrics and the exact result block (anchors §7 layout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calculateMetrics, inflightSteps, peakConcurrency } from './metrics.js';
import { formatResultBlock } from './result-block.js';
import type { RequestRecord } from './types.js';

function rec(startTime: number, chunks: number[], outputTokens: number, promptLen: number): RequestRecord {
  const itl: number[] = [];
  for (let i = 1; i < chunks.length; i++) itl.push(chunks[i]! - chunks[i - 1]!);
  return {
    success: true, startTime, ttft: chunks[0]! - startTime, itl, latency: chunks[chunks.length - 1]! - startTime,
    outputTokens, promptLen, generatedText: 'x', error: '', clientQueueTime: 0,
  };
}
const failed: RequestRecord = {
  success: false, startTime: 10.75, ttft: 0, itl: [], latency: 0, outputTokens: 0, promptLen: 7,
  generatedText: '', error: 'Internal Server Error', clientQueueTime: 0,
};
// Times are binary-exact so every expected value below is exact.
const trace: RequestRecord[] = [
  rec(10, [10.25, 10.5, 10.75, 11.0], 4, 10), // ttft .25, itl .25 x3, e2el 1, tpot .25
  rec(10.5, [11.0, 12.0], 2, 20), //            ttft .5,  itl 1,      e2el 1.5, tpot 1
  failed,
  rec(11.5, [12.25], 1, 5), //                  ttft .75, no itl,     e2el .75, no tpot
];

test('metrics of a hand-computed trace', () => {
  const m = calculateMetrics({ records: trace, durationS: 4, percentiles: [99, 25], goodput: { ttft: 600, tpot: 1000 } });
  assert.equal(m.completed, 3);
  assert.equal(m.failed, 1);
  assert.equal(m.totalInput, 35);
  assert.equal(m.totalOutput, 7);
  assert.equal(m.requestThroughput, 0.75);
  assert.equal(m.outputThroughput, 1.75);
  assert.equal(m.totalTokenThroughput, 10.5);
  assert.equal(m.requestGoodput, 0.5); // the first two meet ttft<=600ms and tpot<=1000ms (SLO inclusive)
  assert.deepEqual(m.tokensPerSecond, [3, 2, 2, 0]);
  assert.equal(m.maxOutputTokensPerS, 3);
  assert.equal(m.maxConcurrentRequests, 2);
  assert.equal(m.ttft.mean, 500);
  assert.equal(m.ttft.median, 500);
  assert.ok(Math.abs(m.ttft.std - 204.1241452) < 1e-6);
  assert.ok(Math.abs(m.ttft.percentiles[0]![1] - 745) < 1e-9);
  assert.equal(m.ttft.percentiles[1]![1], 375);
  assert.equal(m.tpot.mean, 625);
  assert.ok(Math.abs(m.tpot.percentiles[0]![1] - 992.5) < 1e-9);
  assert.equal(m.itl.mean, 437.5);
  assert.equal(m.itl.median, 250);
  assert.ok(Math.abs(m.itl.percentiles[0]![1] - 977.5) < 1e-9);
  assert.ok(Math.abs(m.e2el.mean - 1083.3333333) < 1e-6);
  assert.equal(m.e2el.median, 1000);
  assert.ok(Math.abs(m.e2el.percentiles[0]![1] - 1490) < 1e-9);
  assert.deepEqual(m.actualOutputLens, [4, 2, 0, 1]);
});

test('missing usage falls back to the tokenizer count; no successes gives zeros', () => {
  const r = { ...rec(0, [0.5, 1], 0, 3), generatedText: 'a b c' };
  const m = calculateMetrics({ records: [r], durationS: 1, percentiles: [99], countTokens: (t) => t.split(' ').length });
  assert.equal(m.totalOutput, 3);
  const none = calculateMetrics({ records: [failed], durationS: 1, percentiles: [99] });
  assert.equal(none.completed, 0);
  assert.equal(none.ttft.mean, 0);
  assert.equal(none.maxOutputTokensPerS, 0);
  assert.equal(none.maxConcurrentRequests, 0);
});

test('peak concurrency treats intervals as half-open; in-flight steps', () => {
  const a = rec(0, [1], 1, 1);
  const b = rec(1, [2], 1, 1); // starts exactly when a ends
  assert.equal(peakConcurrency([a, b]), 1);
  assert.deepEqual(inflightSteps([a, b, rec(0.5, [1.5], 1, 1)], 0), [[0, 1], [0.5, 2], [1, 2], [1.5, 1], [2, 0]]);
});

test('result block matches the vllm bench serve layout character for character', () => {
  const m = calculateMetrics({ records: trace, durationS: 4, percentiles: [99] });
  const block = formatResultBlock({
    metrics: m, durationS: 4, maxConcurrency: 2, requestRate: Infinity,
    percentileMetrics: ['ttft', 'tpot', 'itl'], goodputConfigured: false,
  });
  // Anchor block (anchors §7) with this trace's values. Python pads values to 10 columns, so rows
  // carry trailing spaces; the anchor shows them stripped.
  const expected = `
============ Serving Benchmark Result ============
Successful requests:                     3
Failed requests:                         1
Maximum request concurrency:             2
Benchmark duration (s):                  4.00
Total input tokens:                      35
Total generated tokens:                  7
Request throughput (req/s):              0.75
Output token throughput (tok/s):         1.75
Peak output token throughput (tok/s):    3.00
Peak concurrent requests:                2.00
Total token throughput (tok/s):          10.50
---------------Time to First Token----------------
Mean TTFT (ms):                          500.00
Median TTFT (ms):                        500.00
P99 TTFT (ms):                           745.00
-----Time per Output Token (excl. 1st token)------
Mean TPOT (ms):                          625.00
Median TPOT (ms):                        625.00
P99 TPOT (ms):                           992.50
---------------Inter-token Latency----------------
Mean ITL (ms):                           437.50
Median ITL (ms):                         250.00
P99 ITL (ms):                            977.50
==================================================
`.slice(1);
  const lines = block.split('\n');
  assert.deepEqual(lines.map((l) => l.trimEnd()), expected.split('\n'));
  for (const l of lines.slice(0, -1)) {
    if (/^[=-]/.test(l)) assert.equal(l.length, 50, l);
    else {
      assert.equal(l.length, 51, `row is {:<40} {:<10}: ${JSON.stringify(l)}`);
      assert.equal(l[40], ' ');
    }
  }
});

test('optional rows and sections: rate, goodput, e2el, percentile list, queue sections', () => {
  const m = calculateMetrics({ records: trace, durationS: 4, percentiles: [50, 99.9], goodput: { e2el: 1500 } });
  const block = formatResultBlock({
    metrics: m, durationS: 4, maxConcurrency: null, requestRate: 2.5,
    percentileMetrics: ['e2el', 'client_queue_time'], goodputConfigured: true,
  });
  const lines = block.split('\n').map((l) => l.trimEnd());
  assert.ok(lines.includes('Request rate configured (RPS):           2.50'));
  assert.ok(lines.includes('Request goodput (req/s):                 0.75'));
  assert.ok(!lines.some((l) => l.startsWith('Maximum request concurrency')));
  assert.ok(lines.includes('----------------End-to-end Latency----------------'));
  assert.ok(lines.includes('P50 E2EL (ms):                           1000.00'));
  assert.ok(lines.includes('P99.9 E2EL (ms):                         1499.00'));
  assert.ok(!lines.some((l) => l.includes('TTFT') || l.includes('Client Queue')), 'unselected / inapplicable sections absent');
});
