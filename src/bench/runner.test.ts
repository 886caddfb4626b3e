// The runner releases requests at their arrival offsets and never exceeds max concurrency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import { arrivalOffsets } from './arrivals.js';
import { Rng } from '../util/rng.js';
import { runBenchmark } from './runner.js';
import { startStubServer } from './stub-server.js';
import { median } from './stats.js';

test('sends follow the seeded arrival schedule (median lateness < 50 ms on a loaded machine, never early)', async () => {
  const stub = await startStubServer({ ttftMs: 2, itlMs: 1 });
  const dispatcher = new Agent();
  try {
    const n = 40;
    const arrivals = arrivalOffsets(n, 40, 1, new Rng(11)); // ~1 s of Poisson arrivals
    const samples = Array.from({ length: n }, () => ({ prompt: 'p', promptLen: 1, expectedOutputLen: 3 }));
    const u = new URL(stub.url);
    const r = await runBenchmark({
      dispatcher, origin: u.origin, path: '/v1/completions', chat: false, model: 'stub-model', samples, arrivals,
      maxConcurrency: null, ignoreEos: true, temperature: null, numWarmups: 0, requestIdPrefix: 't-',
    });
    assert.equal(r.records.length, n);
    assert.ok(r.records.every((x) => x.success && x.outputTokens === 3));
    const late = r.records.map((x, i) => (x.startTime - r.t0 - arrivals[i]!) * 1000);
    assert.ok(late.every((ms) => ms > -1), `a request was sent early: ${Math.min(...late)} ms`);
    assert.ok(median(late) < 50, `median lateness ${median(late)} ms`);
    assert.ok(r.durationS >= arrivals[n - 1]!);
  } finally {
    await dispatcher.close();
    await stub.close();
  }
});
