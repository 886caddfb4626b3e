import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleRow, topK, argmax } from './sampler.js';
import { Rng } from '../util/rng.js';
import { defaultSamplingParams, type SamplingParams } from './protocol.js';

const ctx = (sampling: Partial<SamplingParams>, extra: { outputCounts?: Map<number, number>; prompt?: number[]; numOut?: number } = {}) => ({
  sampling: { ...defaultSamplingParams, ...sampling },
  promptTokenIds: extra.prompt ?? [],
  outputCounts: extra.outputCounts ?? new Map(),
  numOutputTokens: extra.numOut ?? 0,
  eosTokenIds: [2],
  rng: new Rng(1),
});

function histogram(logits: number[], sp: Partial<SamplingParams>, n = 4000): number[] {
  const counts = new Array(logits.length).fill(0);
  const c = ctx(sp);
  for (let i = 0; i < n; i++) counts[sampleRow(Float32Array.from(logits), c).tokenId]++;
  return counts.map((x) => x / n);
}

test('greedy picks the argmax; topK returns the largest in order', () => {
  const row = Float32Array.from([0.1, 3, -1, 2.5, 3.5]);
  assert.equal(sampleRow(row.slice(), ctx({ temperature: 0 })).tokenId, 4);
  assert.deepEqual(topK(row, 3).map(([i]) => i), [4, 1, 3]);
  assert.equal(argmax(row), 4);
});

test('temperature sampling follows softmax; top-k, top-p, min-p cut the tail', () => {
  const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
  const h = histogram(logits, { temperature: 1 });
  [0.5, 0.3, 0.15, 0.05].forEach((p, i) => assert.ok(Math.abs(h[i]! - p) < 0.03, `p${i} ${h[i]}`));
  const k2 = histogram(logits, { temperature: 1, topK: 2 });
  assert.equal(k2[2]! + k2[3]!, 0);
  assert.ok(Math.abs(k2[0]! - 0.625) < 0.03);
  const p = histogram(logits, { temperature: 1, topP: 0.8 });
  assert.equal(p[2]! + p[3]!, 0, 'top_p 0.8 keeps the first two (0.5 + 0.3)');
  const mp = histogram(logits, { temperature: 1, minP: 0.2 });
  assert.equal(mp[3], 0, 'min_p 0.2 drops p < 0.1');
  assert.ok(mp[2]! > 0);
});

test('penalties and min_tokens', () => {
  const row = () => Float32Array.from([1, 2, 1.9, -1]);
  // repetition penalty on a token seen in the prompt: 2 / 2 = 1 < 1.9
  assert.equal(sampleRow(row(), ctx({ temperature: 0, repetitionPenalty: 2 }, { prompt: [1] })).tokenId, 2);
  // frequency penalty on a generated token
  assert.equal(sampleRow(row(), ctx({ temperature: 0, frequencyPenalty: 0.5 }, { outputCounts: new Map([[1, 1]]) })).tokenId, 2);
  // min_tokens masks eos (id 2 here) until reached
  assert.equal(sampleRow(Float32Array.from([0, 0, 5, 1]), ctx({ temperature: 0, minTokens: 2 }, { numOut: 0 })).tokenId, 3);
});

test('logprobs are the raw distribution', () => {
  const r = sampleRow(Float32Array.from([0, Math.log(3)]), ctx({ temperature: 0, logprobs: 2, repetitionPenalty: 5 }, { prompt: [1] }));
  assert.ok(Math.abs(r.logprob!.top[0]!.logprob - Math.log(0.75)) < 1e-6);
  assert.equal(r.logprob!.top[0]!.tokenId, 1);
});

test('a grammar bitmask: greedy and random sampling only ever pick allowed ids', () => {
  const logits = [5, 4, 3, 2, 1, 0, -1, -2];
  const allowed = new Int32Array([(1 << 2) | (1 << 6)]);
  assert.equal(sampleRow(Float32Array.from(logits), { ...ctx({ temperature: 0 }), allowed }).tokenId, 2);
  const c = { ...ctx({ temperature: 1.5, topK: 3, topP: 0.9 }), allowed };
  for (let i = 0; i < 500; i++) assert.ok([2, 6].includes(sampleRow(Float32Array.from(logits), c).tokenId));
  // with logprobs, the reported distribution is the raw one (vLLM's default), the choice still masked
  const r = sampleRow(Float32Array.from(logits), { ...ctx({ temperature: 0, logprobs: 1 }), allowed });
  assert.equal(r.tokenId, 2);
  assert.equal(r.logprob!.top[0]!.tokenId, 0);
});
