// Sweep goodput rules, the summary text, option validation and merging of saved sweeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoodput, type ReportConfig, type WorkloadConfig } from './config.js';
import { parseGpus, parseSweep, parseTargets } from './sweep-config.js';
import { mergeSweeps } from './sweep-merge.js';
import { formatSweepSummary, summarizePoint, targetResult, type SweepPoint, type SweepResult } from './sweep-summary.js';
import type { RequestRecord } from './types.js';

function pt(x: number, att: number, thr = x): SweepPoint {
  return {
    x, request_rate: x, max_concurrency: null, num_requests: 10, completed: 10, failed: 0, good: att / 10, slo_attainment: att, duration: 10 / x,
    request_throughput: thr, request_goodput: (thr * att) / 100, output_throughput: thr * 100, mean_ttft_ms: 1, p50_ttft_ms: 1, p99_ttft_ms: 2,
    mean_tpot_ms: 1, p50_tpot_ms: 1, p99_tpot_ms: 2,
  };
}

test("DistServe goodput: highest rate with every lower rate at >= target; per GPU; concurrency sweeps report throughput", () => {
  const a = targetResult('A', 'u', 2, 'request_rate', [pt(4, 80), pt(1, 100), pt(2, 90), pt(8, 95)], 90);
  assert.deepEqual(a.points.map((p) => p.x), [1, 2, 4, 8]);
  assert.equal(a.goodput, 2); // 90% counts (inclusive); 8 is above a miss at 4: not counted
  assert.equal(a.goodput_at, 2);
  assert.equal(a.goodput_per_gpu, 1);
  assert.equal(a.max_request_goodput, 7.6); // 8 * 95%
  const none = targetResult('B', 'u', 1, 'request_rate', [pt(1, 50)], 90);
  assert.equal(none.goodput, 0);
  assert.equal(none.goodput_at, null);
  const c = targetResult('C', 'u', 1, 'max_concurrency', [pt(16, 100, 30), pt(32, 92, 41.5), pt(64, 40, 50)], 90);
  assert.equal(c.goodput, 41.5);
  assert.equal(c.goodput_at, 32);
  assert.equal(targetResult('A', 'u', 1, 'request_rate', [pt(1, 100), pt(2, 85)], 80).goodput, 2); // the target is an option
});

test('a point from records: attainment counts failures as misses, P50/P99 always present', () => {
  const rec = (ttft: number, ok = true): RequestRecord => ({
    success: ok, startTime: 0, ttft, itl: [0.25], latency: ttft + 0.25, outputTokens: 2, promptLen: 4, generatedText: '', error: '', clientQueueTime: 0,
  });
  const p = summarizePoint({ x: 2, requestRate: 2, maxConcurrency: null, records: [rec(0.25), rec(0.5), rec(1), rec(0, false)], durationS: 2, slo: { ttft: 500 } });
  assert.equal(p.num_requests, 4);
  assert.equal(p.good, 2);
  assert.equal(p.slo_attainment, 50);
  assert.equal(p.request_goodput, 1);
  assert.equal(p.p50_ttft_ms, 500);
  assert.equal(p.p50_tpot_ms, 250);
  assert.equal(p.failed, 1);
});

test('summary text: one row per point, goodput per GPU relative to the first target, the best named', () => {
  const r: SweepResult = {
    kind: 'pdserve-bench-sweep', date: 'd', sweep: 'request_rate', values: [1, 2], slo: { ttft: 1000, tpot: 25 }, slo_attainment_target: 90,
    workload: {}, model_id: 'm', tokenizer_id: 'm', interrupted: true, planned_points: 4, completed_points: 3,
    targets: [targetResult('A', 'ua', 2, 'request_rate', [pt(1, 100), pt(2, 100)], 90), targetResult('B', 'ub', 2, 'request_rate', [pt(1, 100)], 90)],
  };
  const s = formatSweepSummary(r);
  assert.match(s, /SLO sweep: TTFT <= 1000 ms, TPOT <= 25 ms; attainment target 90%/);
  assert.equal(s.split('\n').filter((l) => /^[AB] +\d/.test(l)).length, 3);
  assert.match(s, /^A: goodput 2\.00 req\/s \(highest rate with >= 90% attainment, at rate 2\); 2 GPUs -> 1\.00 req\/s per GPU$/m);
  assert.match(s, /^B: goodput 1\.00 req\/s .* 0\.50 req\/s per GPU; 0\.50x A per GPU$/m);
  assert.match(s, /^Best goodput per GPU: A \(1\.00 req\/s per GPU\)$/m);
  assert.match(s, /Interrupted: 3 of 4 points completed/);
});

const common = { goodput: parseGoodput(['ttft:1000']), resultDir: '/tmp/x', resultFilename: null, saveResult: false } as unknown as WorkloadConfig & ReportConfig;

test('sweep options: one of rates or concurrencies, targets, GPUs, SLOs required, attainment in (0, 100]', () => {
  const s = parseSweep({ requestRates: '4,1,2', target: ['A=http://127.0.0.1:1', 'http://127.0.0.1:2'], gpus: ['A=2'] }, common, 'D');
  assert.equal(s.kind, 'request_rate');
  assert.deepEqual(s.values, [4, 1, 2]);
  assert.deepEqual(s.targets.map((t) => [t.name, t.cfg.baseUrl, t.gpus]), [['A', 'http://127.0.0.1:1', 2], ['B', 'http://127.0.0.1:2', 1]]);
  assert.equal(s.attainmentTarget, 90);
  assert.equal(s.jsonPath, '/tmp/x/sweep-D.json');
  assert.equal(s.reportPath, '/tmp/x/sweep-D.html');
  assert.equal(parseSweep({ maxConcurrencies: '8,16', target: ['A=http://h:1'], sloAttainment: '99' }, common, 'D').attainmentTarget, 99);
  const named = parseSweep({ requestRates: '1', target: ['A=http://h:1'] }, { ...common, resultDir: null, resultFilename: 'ab.json' }, 'D');
  assert.deepEqual([named.jsonPath, named.reportPath], ['ab.json', 'ab.html']);
  const none = parseSweep({ requestRates: '1', target: ['A=http://h:1'] }, { ...common, resultDir: null }, 'D');
  assert.deepEqual([none.jsonPath, none.reportPath], [null, null]);
  const t = ['A=http://h:1'];
  assert.throws(() => parseSweep({ target: t }, common, 'D'), /exactly one of --request-rates/);
  assert.throws(() => parseSweep({ requestRates: '1', maxConcurrencies: '2', target: t }, common, 'D'), /exactly one of/);
  assert.throws(() => parseSweep({ requestRates: '1,inf', target: t }, common, 'D'), /finite request rates > 0/);
  assert.throws(() => parseSweep({ requestRates: '1,,2', target: t }, common, 'D'), /comma list/);
  assert.throws(() => parseSweep({ requestRates: '1,1', target: t }, common, 'D'), /twice/);
  assert.throws(() => parseSweep({ maxConcurrencies: '2.5', target: t }, common, 'D'), /integers >= 1/);
  assert.throws(() => parseSweep({ requestRates: '1', target: t, sloAttainment: '0' }, common, 'D'), /--slo-attainment/);
  assert.throws(() => parseSweep({ requestRates: '1', target: t }, { ...common, goodput: {} }, 'D'), /needs SLOs: --goodput/);
  assert.throws(() => parseSweep({ requestRates: '1', target: ['A=ftp://x'] }, common, 'D'), /invalid base URL/);
  assert.throws(() => parseTargets([]), /at least one --target/);
  assert.throws(() => parseTargets(['A=http://h:1', 'A=http://h:2']), /given twice/);
  assert.throws(() => parseTargets(['a b=http://h:1']), /letters, digits/);
  assert.deepEqual([...parseGpus(['A=2,B=4'], ['A', 'B', 'C'])], [['A', 2], ['B', 4], ['C', 1]]);
  assert.throws(() => parseGpus(['Z=2'], ['A']), /not a --target/);
  assert.throws(() => parseGpus(['A=0'], ['A']), /integer >= 1/);
  assert.throws(() => parseGpus(['A'], ['A']), /NAME=COUNT/);
});

test('saved sweeps merge into one (targets side by side); mismatched SLOs or names are refused', () => {
  const base: SweepResult = {
    kind: 'pdserve-bench-sweep', date: 'd', sweep: 'request_rate', values: [1, 2], slo: { ttft: 1000 }, slo_attainment_target: 90,
    workload: {}, model_id: 'm', tokenizer_id: 'm', interrupted: false, planned_points: 2, completed_points: 2,
    targets: [targetResult('A', 'ua', 2, 'request_rate', [pt(1, 100), pt(2, 100)], 90)],
  };
  const other = { ...base, values: [1, 4], targets: [targetResult('B', 'ub', 2, 'request_rate', [pt(1, 100), pt(4, 100)], 90)] };
  const m = mergeSweeps([base, other]);
  assert.deepEqual(m.targets.map((t) => t.name), ['A', 'B']);
  assert.deepEqual(m.values, [1, 2, 4]);
  assert.equal(m.planned_points, 4);
  assert.throws(() => mergeSweeps([base, base]), /appears in two sweeps/);
  assert.throws(() => mergeSweeps([base, { ...other, slo: { ttft: 500 } }]), /different SLOs/);
  assert.throws(() => mergeSweeps([base, { ...other, sweep: 'max_concurrency' }]), /cannot merge a max_concurrency sweep/);
});
