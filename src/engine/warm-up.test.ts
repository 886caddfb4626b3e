import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative, type NativeModelSpec } from '../native/binding.js';
import { warmUp } from './warm-up.js';

const spec: NativeModelSpec = {
  numLayers: 2, hiddenSize: 64, intermediateSize: 96, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 50,
  rmsNormEps: 1e-6, ropeTheta: 10000, ropeType: 'default', tieWordEmbeddings: true, qkvBias: false, qkNorm: false, weightDtype: 'f32',
};
function model() {
  const m = loadNative().createModel(spec, { device: 'cpu', threads: 1 });
  m.initDummyWeights(5);
  m.finalizeWeights();
  m.allocKvCache(8, 16, 'f32');
  return m;
}
const prefill = (m: ReturnType<typeof model>) => {
  const n = 20;
  const pos = Int32Array.from({ length: n }, (_, i) => i);
  return m.forward({ tokenIds: pos.map((i) => (i * 7) % 50), positions: pos, slotMapping: pos, queryStartLoc: Int32Array.of(0, n),
    contextLens: Int32Array.of(n), blockTables: Int32Array.of(0, 1), maxBlocksPerSeq: 2, logitsIndices: Int32Array.of(n - 1) });
};

test('warm-up forward fits the pool and leaves nothing that changes later outputs', async () => {
  const a = model(), b = model();
  try {
    const ms = await warmUp(a, { blockSize: 16, numBlocks: 8, maxNumBatchedTokens: 2048 }); // capped at 128 tokens
    assert.ok(ms >= 0);
    assert.deepEqual(await prefill(a), await prefill(b));
  } finally {
    a.dispose();
    b.dispose();
  }
});
