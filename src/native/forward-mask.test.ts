// forwardSample's grammar masks (BatchDesc::tokenMasks; pds/token-mask.h on the CPU backend, the same
// contract as native/cuda/token-mask.cu): masked rows choose only allowed ids and come back with -inf at the
// rejected ones, unmasked rows are untouched, temperature rows draw what the host sampler draws from the
// host-masked row; bad mask arguments are RangeErrors. Also planSampling: which rows carry a mask.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative, greedyRows, type ForwardBatch } from './binding.js';
import { applyBitmask, bitmaskAllows } from '../structured/apply-bitmask.js';
import { planSampling } from '../engine/sampler.js';
import { Sequence } from '../engine/sequence.js';
import { defaultSamplingParams, type TokenConstraint } from '../engine/protocol.js';
import { Rng } from '../util/rng.js';

const V = 50; // two mask words, the last one partial
const spec = { numLayers: 2, hiddenSize: 64, intermediateSize: 96, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: V,
  rmsNormEps: 1e-6, ropeTheta: 10000, ropeType: 'default', tieWordEmbeddings: true, qkvBias: false, qkNorm: false, weightDtype: 'f32' };

function model() {
  const m = loadNative().createModel(spec as never, { device: 'cpu', threads: 1 });
  m.initDummyWeights(7);
  m.finalizeWeights();
  m.allocKvCache(16, 4, 'f32');
  return m;
}

// three sequences, one new token each (blocks 1, 2, 3)
const batch = (): ForwardBatch => ({
  tokenIds: Int32Array.of(3, 9, 27), positions: Int32Array.of(0, 0, 0), slotMapping: Int32Array.of(4, 8, 12),
  queryStartLoc: Int32Array.of(0, 1, 2, 3), contextLens: Int32Array.of(1, 1, 1), blockTables: Int32Array.of(1, 2, 3),
  maxBlocksPerSeq: 1, logitsIndices: Int32Array.of(0, 1, 2),
});

function maskOf(allowed: number[]): Int32Array {
  const m = new Int32Array(2);
  for (const id of allowed) m[id >> 5]! |= 1 << (id & 31);
  return m;
}

const argmax = (row: Float32Array) => row.reduce((b, v, i) => (v > row[b]! ? i : b), 0);

test('forwardSample with masks: masked rows pick allowed ids, come back masked; the unmasked row is untouched', async () => {
  const m = model();
  try {
    const free = await m.forwardSample(batch(), greedyRows(3), true);
    const plain = free.logits!;
    // row 0: the 5 least likely ids; row 2: ids of both words, incl. the partial word's last (49)
    const row0 = plain.subarray(0, V);
    const least = [...row0.keys()].sort((a, b) => row0[a]! - row0[b]!).slice(0, 5);
    const allow2 = [1, 33, 49];
    const s = greedyRows(3);
    s.maskRows = Int32Array.of(0, 2);
    s.masks = new Int32Array(4);
    s.masks.set(maskOf(least), 0);
    s.masks.set(maskOf(allow2), 2);
    const r = await m.forwardSample(batch(), s, true);
    const want0 = plain.slice(0, V); applyBitmask(want0, maskOf(least));
    const want2 = plain.slice(2 * V, 3 * V); applyBitmask(want2, maskOf(allow2));
    assert.deepEqual(Array.from(r.logits!.subarray(0, V)), Array.from(want0));
    assert.deepEqual(Array.from(r.logits!.subarray(V, 2 * V)), Array.from(plain.subarray(V, 2 * V)));
    assert.deepEqual(Array.from(r.logits!.subarray(2 * V)), Array.from(want2));
    assert.equal(r.tokens[0], argmax(want0));
    assert.ok(least.includes(r.tokens[0]!), 'row 0 took an allowed id');
    assert.equal(r.tokens[1], free.tokens[1]);
    assert.equal(r.tokens[2], argmax(want2));
    assert.ok(allow2.includes(r.tokens[2]!));
    assert.notEqual(r.tokens[0], free.tokens[0], 'the mask changed the greedy choice');

    // temperature rows: the backend's draw = the host sampler on the host-masked row, same u
    const ops = loadNative().ops as { sampleRow(row: Float32Array, p: Record<string, number>): number };
    const rng = new Rng(5);
    for (let i = 0; i < 20; i++) {
      const t = greedyRows(3);
      t.temperature.fill(1.5);
      for (let k = 0; k < 3; k++) t.u[k] = Math.min(rng.random(), 0.99999994);
      t.maskRows = Int32Array.of(1);
      const allow = [0, 7, 31, 32, 40 + (i % 10)];
      t.masks = maskOf(allow);
      const got = await m.forwardSample(batch(), t, false);
      assert.equal(got.logits, null);
      const row = plain.slice(V, 2 * V); applyBitmask(row, t.masks);
      assert.equal(got.tokens[1], ops.sampleRow(row, { temperature: 1.5, topP: 1, minP: 0, topK: 0, u: t.u[1]! }));
      assert.ok(bitmaskAllows(t.masks, got.tokens[1]!));
    }
  } finally {
    m.dispose();
  }
});

test('forwardSample rejects bad masks with RangeErrors and keeps working', async () => {
  const m = model();
  try {
    const bad = async (maskRows: Int32Array, masks: Int32Array, re: RegExp) => {
      const s = greedyRows(3);
      s.maskRows = maskRows;
      s.masks = masks;
      await assert.rejects(async () => m.forwardSample(batch(), s, false), (e: Error) => e instanceof RangeError && re.test(e.message));
    };
    await bad(Int32Array.of(2, 1), new Int32Array(4), /ascending/);
    await bad(Int32Array.of(0, 0), new Int32Array(4), /ascending/);
    await bad(Int32Array.of(3), new Int32Array(2), /ascending rows of \[0, logitsIndices.length\)/);
    await bad(Int32Array.of(-1), new Int32Array(2), /ascending/);
    await bad(Int32Array.of(0), new Int32Array(3), /maskRows.length \* 2 words/);
    await bad(Int32Array.of(0, 1), new Int32Array(2), /needs 4/);
    const ok = await m.forwardSample(batch(), greedyRows(3), false);
    assert.equal(ok.tokens.length, 3);
  } finally {
    m.dispose();
  }
});

function constraint(mask: Int32Array, ready: boolean): TokenConstraint {
  return { mask, ready, prepare: async () => {}, accept: () => true, isTerminated: () => false, dispose: () => {} };
}

test('planSampling: ready grammar rows go to the backend with their masks; others stay on the host', () => {
  const mk = (id: string, extra: Partial<typeof defaultSamplingParams> = {}) => new Sequence(id, [1, 2], { ...defaultSamplingParams, ...extra });
  const free = mk('a');
  const g1 = mk('b', { temperature: 0.7 });
  g1.constraint = constraint(maskOf([3, 4]), true);
  const notReady = mk('c');
  notReady.constraint = constraint(maskOf([5]), false);
  const withLogprobs = mk('d', { logprobs: 2 });
  withLogprobs.constraint = constraint(maskOf([6]), true);
  const g2 = mk('e');
  g2.constraint = constraint(maskOf([40]), true);
  const wrongSize = mk('f');
  wrongSize.constraint = constraint(new Int32Array(3), true);
  const p = planSampling([free, g1, notReady, withLogprobs, g2, wrongSize], [0], new Rng(1), V);
  assert.deepEqual(p.hostRows, [false, false, true, true, false, true]);
  assert.deepEqual(Array.from(p.arrays.maskRows!), [1, 4]);
  assert.deepEqual(Array.from(p.arrays.masks!), [...maskOf([3, 4]), ...maskOf([40])]);
  assert.ok(p.arrays.u[1]! > 0, 'the masked temperature row drew its u');
  assert.equal(p.wantLogits, true);
  const none = planSampling([free], [0], new Rng(1));
  assert.equal(none.arrays.maskRows, undefined);
  assert.equal(none.wantLogits, false);
});
