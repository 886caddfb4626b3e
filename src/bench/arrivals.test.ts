// Arrival process: mean rate, inter-arrival coefficient of variation 1/sqrt(burstiness), determinism.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrivalOffsets } from './arrivals.js';
import { Rng } from '../util/rng.js';

function gapsOf(offsets: number[]): number[] {
  return offsets.map((t, i) => t - (i ? offsets[i - 1]! : 0));
}
function cv(xs: number[]): number {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) * (b - m), 0) / xs.length;
  return Math.sqrt(v) / m;
}

test('mean rate equals --request-rate and CV matches 1/sqrt(burstiness) within 5%', () => {
  const n = 20000;
  for (const rate of [4, 50]) {
    for (const b of [0.25, 0.5, 1, 2, 8]) {
      const off = arrivalOffsets(n, rate, b, new Rng(7));
      const meanRate = n / off[n - 1]!;
      assert.ok(Math.abs(meanRate - rate) / rate < 1e-9, `rate ${rate} b ${b}: mean rate ${meanRate}`);
      const c = cv(gapsOf(off));
      const want = 1 / Math.sqrt(b);
      assert.ok(Math.abs(c - want) / want < 0.05, `rate ${rate} b ${b}: cv ${c} want ${want}`);
    }
  }
});

test('the raw gamma sampler has mean shape*scale and variance shape*scale^2 (within 3%)', () => {
  const rng = new Rng(1);
  for (const [k, th] of [[0.3, 2], [1, 0.1], [5, 1]] as const) {
    const xs = Array.from({ length: 50000 }, () => rng.gamma(k, th));
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length;
    assert.ok(Math.abs(m - k * th) / (k * th) < 0.03, `mean ${m}`);
    assert.ok(Math.abs(v - k * th * th) / (k * th * th) < 0.05, `var ${v}`);
  }
});

test('same seed -> identical arrivals; different seed -> different; inf rate -> all at once', () => {
  const a = arrivalOffsets(100, 10, 0.7, new Rng(42));
  assert.deepEqual(arrivalOffsets(100, 10, 0.7, new Rng(42)), a);
  assert.notDeepEqual(arrivalOffsets(100, 10, 0.7, new Rng(43)), a);
  assert.deepEqual(arrivalOffsets(5, Infinity, 1, new Rng(1)), [0, 0, 0, 0, 0]);
  const even = arrivalOffsets(4, 2, Infinity, new Rng(1));
  assert.deepEqual(even, [0.5, 1, 1.5, 2]);
  assert.throws(() => arrivalOffsets(3, 1, 0, new Rng(1)), /burstiness/);
});

test('integers() stays in range and covers it uniformly', () => {
  const rng = new Rng(3);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70000; i++) counts[rng.integers(0, 7)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 500, String(counts));
});
