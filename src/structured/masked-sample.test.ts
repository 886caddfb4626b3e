// The native masked sampler picks what the JS sampler picks on the same masked row and uniform draw, and
// never a masked id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleRow } from '../engine/sampler.js';
import { defaultSamplingParams, type SamplingParams } from '../engine/protocol.js';
import { Rng } from '../util/rng.js';
import { sampleMaskedRow } from './masked-sample.js';
import { bitmaskAllows } from './apply-bitmask.js';

test('sampleMaskedRow = sampleRow with the mask (greedy, temperature, top-k, top-p, min-p)', () => {
  const V = 1000;
  const rng = new Rng(5);
  const settings: Array<Partial<SamplingParams>> = [{ temperature: 0 }, { temperature: 1 }, { temperature: 0.7, topK: 20 }, { temperature: 1.2, topP: 0.8 }, { temperature: 1, minP: 0.1 }];
  for (let trial = 0; trial < 40; trial++) {
    const row = Float32Array.from({ length: V }, () => (rng.random() - 0.5) * 8);
    const mask = new Int32Array(Math.ceil(V / 32));
    for (let w = 0; w < mask.length; w++) mask[w] = trial % 3 === 0 ? (rng.random() < 0.2 ? 1 << (w % 32) : 0) : (rng.random() * 2 ** 32) | 0;
    mask[3] |= 1; // at least one allowed id
    const sp: SamplingParams = { ...defaultSamplingParams, ...settings[trial % settings.length]! };
    const u = rng.random();
    const native = sampleMaskedRow(row.slice(), mask, sp, u);
    const js = sampleRow(row.slice(), { sampling: sp, promptTokenIds: [], outputCounts: new Map(), numOutputTokens: 0, eosTokenIds: [], rng: { random: () => u } as Rng, allowed: mask }).tokenId;
    assert.equal(native, js, `trial ${trial}`);
    assert.ok(bitmaskAllows(mask, native), `trial ${trial}: masked id ${native} chosen`);
  }
});
