// Goodput math against hand-computed cases: vLLM's rule (every given SLO >= the request's value,
// inclusive), TPOT = (E2EL - TTFT) / (out - 1) and 0 for one-token outputs, failures never good.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { calculateMetrics } from './metrics.js';
import { countGood, goodputTpot, meetsSlo } from './slo.js';
import type { RequestRecord } from './types.js';

/** A successful request: ttft and latency in seconds (binary-exact values), out output tokens. */
function r(ttft: number, latency: number, out: number): RequestRecord {
  return { success: true, startTime: 0, ttft, itl: [], latency, outputTokens: out, promptLen: 1, generatedText: '', error: '', clientQueueTime: 0 };
}

// ttft 0.25 s, e2el 1.25 s, 5 tokens -> tpot 0.25 s; ttft 0.5, e2el 0.75, 2 tokens -> tpot 0.25;
// ttft 1.0, e2el 1.0, 1 token -> tpot 0 (vLLM); ttft 0.125, e2el 2.125, 9 tokens -> tpot 0.25... and 0.5 below
const recs: RequestRecord[] = [
  r(0.25, 1.25, 5), // tpot 250 ms
  r(0.5, 0.75, 2), // tpot 250 ms
  r(1.0, 1.0, 1), // tpot 0 (one token)
  r(0.125, 4.125, 9), // tpot 500 ms
  { ...r(0.0625, 0.125, 3), success: false }, // failed: never good, whatever its times
];
const lens = recs.map((x) => (x.success ? x.outputTokens : 0));

test('TPOT as vLLM computes it for goodput', () => {
  assert.equal(goodputTpot(recs[0]!, 5), 0.25);
  assert.equal(goodputTpot(recs[1]!, 2), 0.25);
  assert.equal(goodputTpot(recs[2]!, 1), 0);
  assert.equal(goodputTpot(recs[3]!, 9), 0.5);
});

test('hand-computed good counts for each SLO and their combinations', () => {
  const cases: Array<[Parameters<typeof countGood>[2], number]> = [
    [{}, 4], //                                        every success
    [{ ttft: 250 }, 2], //                             0.25 (equal: inclusive), 0.125
    [{ ttft: 249.9 }, 1], //                           only 0.125
    [{ tpot: 250 }, 3], //                             250, 250, 0
    [{ tpot: 0 }, 1], //                               only the one-token request
    [{ e2el: 1000 }, 2], //                            0.75, 1.0
    [{ ttft: 500, tpot: 250 }, 2], //                  #0, #1 (#3 fails tpot, #2 fails ttft)
    [{ ttft: 1000, tpot: 500, e2el: 1250 }, 3], //     #0, #1, #2 (#3 fails e2el)
    [{ ttft: Infinity, tpot: Infinity, e2el: Infinity }, 4],
  ];
  for (const [slo, want] of cases) assert.equal(countGood(recs, lens, slo), want, JSON.stringify(slo));
  assert.equal(meetsSlo(recs[4]!, 3, {}), false);
});

test('request goodput = good / duration; 0 without SLOs (vLLM prints no row then)', () => {
  const m = calculateMetrics({ records: recs, durationS: 8, percentiles: [99], goodput: { ttft: 500, tpot: 250 } });
  assert.equal(m.requestGoodput, 2 / 8);
  assert.equal(m.requestThroughput, 4 / 8);
  assert.equal(calculateMetrics({ records: recs, durationS: 8, percentiles: [99] }).requestGoodput, 0);
});
