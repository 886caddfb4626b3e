// The backend's token choice (pds/sample-row.h, the CPU backend's sampler and the CUDA kernel's reference)
// against sampleRow here, on the same rows and the same uniform draw: the engine uses either per row, so
// they must agree. Temperatures are exact in float32 (the backend receives float32 parameters).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleRow, backendCanSample } from './sampler.js';
import { loadNative } from '../native/binding.js';
import { Rng } from '../util/rng.js';
import { defaultSamplingParams, type SamplingParams } from './protocol.js';

const nativeSample = loadNative().ops.sampleRow as (row: Float32Array, p: Record<string, number>) => number;

function jsSample(row: Float32Array, sp: SamplingParams, u: number): number {
  const rng = { random: () => u } as unknown as Rng;
  return sampleRow(row.slice(), { sampling: sp, promptTokenIds: [], outputCounts: new Map(), numOutputTokens: 0, eosTokenIds: [], rng }).tokenId;
}

test('native sampleRow picks what sampleRow picks (greedy, temperature, top-k, top-p, min-p, ties)', () => {
  const rng = new Rng(42);
  const cases: Array<Partial<SamplingParams>> = [
    { temperature: 0 },
    { temperature: 1 },
    { temperature: 0.5 },
    { temperature: 1.25, topK: 5 },
    { temperature: 0.75, topK: 50 },
    { temperature: 1, topP: 0.9 },
    { temperature: 0.5, topP: 0.5 },
    { temperature: 1, minP: 0.1 },
    { temperature: 0.75, topK: 40, topP: 0.8, minP: 0.05 },
    { temperature: 1, topK: 1 },
  ];
  let checked = 0;
  for (let trial = 0; trial < 40; trial++) {
    const V = trial % 2 ? 1000 : 151936;
    const row = new Float32Array(V);
    for (let i = 0; i < V; i++) row[i] = rng.normal() * 3;
    if (trial % 3 === 0) for (let i = 0; i < 20; i++) row[(i * 7919) % V] = 9; // ties at the top
    for (const c of cases) {
      const sp = { ...defaultSamplingParams, ...c };
      const u = rng.random();
      const want = jsSample(row, sp, u);
      const got = nativeSample(row, { temperature: sp.temperature, topP: sp.topP, minP: sp.minP, topK: sp.topK, u });
      assert.equal(got, want, `trial ${trial} V ${V} ${JSON.stringify(c)} u ${u}`);
      checked++;
    }
  }
  assert.equal(checked, 400);
});

test('backendCanSample: penalties, logprobs and min_tokens masking stay on the host', () => {
  const sp = { ...defaultSamplingParams };
  assert.equal(backendCanSample(sp, 0, [2]), true);
  assert.equal(backendCanSample({ ...sp, logprobs: 0 }, 0, [2]), false);
  assert.equal(backendCanSample({ ...sp, repetitionPenalty: 1.1 }, 0, [2]), false);
  assert.equal(backendCanSample({ ...sp, presencePenalty: 0.5 }, 0, [2]), false);
  assert.equal(backendCanSample({ ...sp, frequencyPenalty: 0.5 }, 0, [2]), false);
  assert.equal(backendCanSample({ ...sp, minTokens: 3 }, 1, [2]), false);
  assert.equal(backendCanSample({ ...sp, minTokens: 3 }, 3, [2]), true);
  assert.equal(backendCanSample({ ...sp, minTokens: 3, ignoreEos: true }, 1, [2]), true);
});
