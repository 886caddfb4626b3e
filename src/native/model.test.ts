// NativeModel binding: KV gather/scatter round trip, error handling (rejections, not crashes), dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative, type NativeModelSpec } from './binding.js';

const spec: NativeModelSpec = {
  numLayers: 2, hiddenSize: 64, intermediateSize: 96, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 50,
  rmsNormEps: 1e-6, ropeTheta: 10000, ropeType: 'default', tieWordEmbeddings: true, qkvBias: true, qkNorm: true,
  weightDtype: 'bf16',
};
const bs = 4;

function newModel() {
  const m = loadNative().createModel(spec, { device: 'cpu', threads: 2 });
  m.initDummyWeights(7);
  m.finalizeWeights();
  m.allocKvCache(32, bs, 'bf16');
  return m;
}

/** Prefill of `tokens` in the given blocks (one sequence), logits of the last row. */
function prefill(m: ReturnType<typeof newModel>, tokens: number[], blocks: number[]) {
  const n = tokens.length;
  const positions = Int32Array.from({ length: n }, (_, i) => i);
  return m.forward({
    tokenIds: Int32Array.from(tokens), positions,
    slotMapping: positions.map((p) => blocks[Math.floor(p / bs)] * bs + (p % bs)),
    queryStartLoc: Int32Array.from([0, n]), contextLens: Int32Array.from([n]),
    blockTables: Int32Array.from(blocks), maxBlocksPerSeq: blocks.length, logitsIndices: Int32Array.from([n - 1]),
  });
}
function decode(m: ReturnType<typeof newModel>, token: number, pos: number, blocks: number[]) {
  return m.forward({
    tokenIds: Int32Array.from([token]), positions: Int32Array.from([pos]),
    slotMapping: Int32Array.from([blocks[Math.floor(pos / bs)] * bs + (pos % bs)]),
    queryStartLoc: Int32Array.from([0, 1]), contextLens: Int32Array.from([pos + 1]),
    blockTables: Int32Array.from(blocks), maxBlocksPerSeq: blocks.length, logitsIndices: Int32Array.from([0]),
  });
}

test('dummy weights are deterministic per seed and logits finite', async () => {
  const a = newModel(), b = newModel();
  try {
    const la = await prefill(a, [1, 2, 3, 4, 5], [0, 1]);
    const lb = await prefill(b, [1, 2, 3, 4, 5], [0, 1]);
    assert.equal(la.length, spec.vocabSize);
    assert.deepEqual(la, lb);
    assert.ok(la.every(Number.isFinite));
    assert.ok(a.weightBytes() > 0);
    assert.equal(a.kvBytesPerToken(), spec.numLayers * 2 * spec.numKvHeads * spec.headDim * 2);
    assert.ok(a.freeMemoryBytes() > 0);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('kvGather / kvScatter round trip moves a sequence to other blocks', async () => {
  const m = newModel();
  try {
    const tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];  // 10 tokens: 2.5 blocks
    const src = [7, 2, 11], dst = [20, 5, 30];
    await prefill(m, tokens, src);
    const buf = new Uint8Array(tokens.length * m.kvBytesPerToken());
    await m.kvGather(Int32Array.from(src), tokens.length, buf);
    assert.ok(buf.some((x) => x !== 0));
    await m.kvScatter(Int32Array.from(dst), tokens.length, buf);
    const again = new Uint8Array(buf.length);
    await m.kvGather(Int32Array.from(dst), tokens.length, again);
    assert.deepEqual(again, buf);
    const a = await decode(m, 8, tokens.length, src);
    const b = await decode(m, 8, tokens.length, dst);
    assert.deepEqual(b, a);
    await assert.rejects(m.kvGather(Int32Array.from([99]), 2, buf), RangeError);
    await assert.rejects(m.kvGather(Int32Array.from(src), tokens.length, new Uint8Array(8)), RangeError);
  } finally {
    m.dispose();
  }
});

test('forward rejects bad input and the model stays usable', async () => {
  const m = newModel();
  try {
    await assert.rejects(prefill(m, [1, 50], [0]), (e: Error) => e instanceof RangeError && /vocabulary/.test(e.message));
    await assert.rejects(prefill(m, [1, -3], [0]), RangeError);
    await assert.rejects(prefill(m, [1, 2], [32]), RangeError);
    await assert.rejects(m.forward({} as never), TypeError);
    await assert.rejects(
      m.forward({ tokenIds: Int32Array.from([1]), positions: Int32Array.from([0]), slotMapping: Int32Array.from([0]),
        queryStartLoc: Int32Array.from([0, 1]), contextLens: Int32Array.from([1]), blockTables: Int32Array.from([0]),
        maxBlocksPerSeq: 1, logitsIndices: Int32Array.from([4]) }),
      RangeError);
    const ok = await prefill(m, [1, 2], [0]);
    assert.ok(ok.every(Number.isFinite));
  } finally {
    m.dispose();
  }
});

test('bad specs and weights give errors, not crashes', () => {
  const native = loadNative();
  assert.throws(() => native.createModel({ ...spec, numKvHeads: 3 }, { device: 'cpu' }), RangeError);
  assert.throws(() => native.createModel({ ...spec, weightDtype: 'q4' as never }, { device: 'cpu' }), TypeError);
  assert.throws(() => native.createModel(spec, { device: 'tpu' }), TypeError);
  assert.throws(() => native.createModel(spec, { device: 'cuda', cudaLibPath: '/nonexistent/pdserve_cuda.so' }), /CUDA backend not built/);
  const m = native.createModel(spec, { device: 'cpu', threads: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'pds-model-'));
  const file = join(dir, 'w.bin');
  writeFileSync(file, Buffer.alloc(300));
  try {
    assert.throws(() => m.finalizeWeights(), /missing weight/);
    assert.throws(() => m.loadTensor('model.bogus', file, 0, 4, 'f32', [1]), /unknown weight 'model.bogus'/);
    assert.throws(() => m.loadTensor('model.norm.weight', file, 0, 4, 'f32', [1]), /shape \[1\], expected \[64\]/);
    assert.throws(() => m.loadTensor('model.norm.weight', file, 100, 256, 'f32', [64]), /end of file/);
    assert.throws(() => m.loadTensor('model.norm.weight', file, 0, 3, 'f32', [64]), RangeError);
    assert.throws(() => m.loadTensor('model.norm.weight', join(dir, 'nope'), 0, 256, 'f32', [64]), /ENOENT|No such file/);
    m.loadTensor('model.norm.weight', file, 0, 256, 'f32', [64]);
  } finally {
    m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => m.weightBytes(), /disposed/);
});

test('tied embeddings (HF tie_word_embeddings): a stored lm_head.weight is ignored; untied reads it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pds-tied-'));
  const file = join(dir, 'lm_head.bin');
  const V = spec.vocabSize, H = spec.hiddenSize;
  writeFileSync(file, Buffer.from(Float32Array.from({ length: V * H }, (_, i) => Math.sin(i * 0.37)).buffer));
  const tied = newModel();
  const untied = loadNative().createModel({ ...spec, tieWordEmbeddings: false }, { device: 'cpu', threads: 2 });
  try {
    const before = await prefill(tied, [1, 2, 3], [0]);
    tied.loadTensor('lm_head.weight', file, 0, V * H * 4, 'f32', [V, H]);  // accepted, changes nothing
    tied.finalizeWeights();
    assert.deepEqual(await prefill(tied, [1, 2, 3], [0]), before);

    untied.initDummyWeights(7);  // same seed as newModel: every shared tensor equal, lm_head random
    untied.finalizeWeights();
    untied.allocKvCache(32, bs, 'bf16');
    const random = await prefill(untied, [1, 2, 3], [0]);
    untied.loadTensor('lm_head.weight', file, 0, V * H * 4, 'f32', [V, H]);
    const loaded = await prefill(untied, [1, 2, 3], [0]);
    assert.notDeepEqual(loaded, random, 'untied: the loaded lm_head produces the logits');
    assert.notDeepEqual(loaded, before);
    assert.throws(() => untied.loadTensor('lm_head.weight', file, 0, 16, 'f32', [2, 2]), /shape \[2, 2\], expected \[50, 64\]/);
  } finally {
    tied.dispose();
    untied.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dispose during a forward waits for it; later calls reject', async () => {
  const m = newModel();
  const p = prefill(m, [1, 2, 3], [0]);
  m.dispose();
  // Either it completed before the dispose took effect or it was rejected as disposed: never a crash.
  await p.then((l) => assert.equal(l.length, spec.vocabSize), (e: Error) => assert.match(e.message, /disposed/));
  await assert.rejects(prefill(m, [1], [0]), /disposed/);
});

test('forward on random malformed batches rejects cleanly (fuzz, never a crash)', async () => {
  const m = newModel();
  let s = 99;
  const rnd = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % n;
  };
  const arr = (n: number, lo: number, hi: number) => Int32Array.from({ length: n }, () => lo + rnd(hi - lo));
  try {
    let ok = 0;
    for (let i = 0; i < 300; i++) {
      const T = 1 + rnd(6), S = 1 + rnd(3), mb = 1 + rnd(4);
      const qsl = arr(S + 1, -1, T + 2);
      if (rnd(2)) { qsl[0] = 0; qsl[S] = T; for (let j = 1; j < S; j++) qsl[j] = Math.max(qsl[j - 1], Math.min(T, qsl[j])); }
      const batch = {
        tokenIds: arr(T, -2, 60), positions: arr(T, -3, 40), slotMapping: arr(T, -2, 140),
        queryStartLoc: qsl, contextLens: arr(S, -1, 20), blockTables: arr(S * mb + rnd(2), -1, 36),
        maxBlocksPerSeq: mb, logitsIndices: arr(rnd(3), -1, T + 1),
      };
      try {
        const l = await m.forward(batch);
        assert.equal(l.length, batch.logitsIndices.length * spec.vocabSize);
        ok++;
      } catch (e) {
        assert.ok(e instanceof RangeError || e instanceof TypeError, `unexpected ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    assert.ok(ok > 0 && ok < 300, `${ok} of 300 accepted`);
  } finally {
    m.dispose();
  }
});

test('KV peer transfer on cpu: clear "not supported" errors, rejections not crashes', async () => {
  const m = newModel();
  try {
    assert.throws(() => m.kvExportIpc!(), /not supported on this device/);
    assert.throws(() => m.kvImportPeer!(Buffer.alloc(8)), /not supported on this device/);
    assert.throws(() => m.kvImportPeer!('x' as unknown as Uint8Array), /handle must be a Buffer/);
    await assert.rejects(m.kvCopyFromPeer!(0, Int32Array.from([1]), Int32Array.from([2])), /not supported on this device/);
    await assert.rejects(m.kvCopyFromPeer!(0, Int32Array.from([1]), Int32Array.from([2, 3])), /srcBlocks has 1 ids but dstBlocks has 2/);
  } finally {
    m.dispose();
  }
});
