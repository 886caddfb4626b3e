// The binding's asynchronous forward path (devices whose Backend::asyncForward() is true: cuda), exercised on
// the CPU backend through its PDSERVE_CPU_ASYNC_FORWARD=1 test hook in a child process: concurrent calls queue and
// settle in order with the same results as the worker-thread path, bad input rejects without stalling the
// queue, dispose rejects what is still queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = `
const { loadNative } = await import(${JSON.stringify(new URL('./binding.js', import.meta.url).href)});
const spec = { numLayers: 2, hiddenSize: 64, intermediateSize: 96, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 50,
  rmsNormEps: 1e-6, ropeTheta: 10000, ropeType: 'default', tieWordEmbeddings: true, qkvBias: false, qkNorm: false, weightDtype: 'f32' };
const m = loadNative().createModel(spec, { device: 'cpu', threads: 1 });
m.initDummyWeights(3); m.finalizeWeights(); m.allocKvCache(16, 4, 'f32');
const batch = (tok, block) => ({ tokenIds: Int32Array.of(tok), positions: Int32Array.of(0), slotMapping: Int32Array.of(block * 4),
  queryStartLoc: Int32Array.of(0, 1), contextLens: Int32Array.of(1), blockTables: Int32Array.of(block), maxBlocksPerSeq: 1,
  logitsIndices: Int32Array.of(0) });
const greedy = { temperature: new Float32Array(1), topP: Float32Array.of(1), minP: new Float32Array(1), topK: new Int32Array(1), u: new Float32Array(1) };
const argmax = (l) => l.indexOf(Math.max(...l));
const order = [];
const calls = [1, 2, 3].map((t) => m.forwardSample(batch(t, t), greedy, true).then((r) => { order.push(t); return r; }));
const bad = m.forward(batch(99, 0)).then(() => 'resolved', (e) => e.constructor.name + ': ' + e.message);
const rs = await Promise.all(calls);
const out = { order, tokens: rs.map((r) => r.tokens[0]), argmax: rs.map((r) => argmax(Array.from(r.logits))), bad: await bad };
const after = await m.forward(batch(1, 1));
out.sameAfter = argmax(Array.from(after)) === out.argmax[0];
const queued = [m.forward(batch(1, 2)), m.forward(batch(2, 3))].map((p) => p.then(() => 'resolved', (e) => e.message));
m.dispose();
out.disposed = await Promise.all(queued);
console.log(JSON.stringify(out));
`;

test('async forward path: queued calls settle in order, bad input rejects, dispose rejects the queue', () => {
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, PDSERVE_CPU_ASYNC_FORWARD: '1' },
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    encoding: 'utf8',
    timeout: 60_000,
  });
  const r = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.deepEqual(r.order, [1, 2, 3]);
  assert.deepEqual(r.tokens, r.argmax, 'backend greedy choice == argmax of the returned logits');
  assert.match(r.bad, /^RangeError: .*token/);
  assert.equal(r.sameAfter, true);
  // the first queued call may already have run (the CPU hook runs the whole forward in forwardBegin)
  assert.ok(r.disposed.every((x: string) => x === 'resolved' || /disposed/.test(x)), JSON.stringify(r.disposed));
  assert.ok(r.disposed.some((x: string) => /disposed/.test(x)), JSON.stringify(r.disposed));
});
