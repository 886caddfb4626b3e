import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LLMEngine } from './llm-engine.js';
import { parseEngineConfig, type EngineConfigInput } from './config.js';
import { FakeModel } from './testing/fake-model.js';
import { defaultSamplingParams, type SamplingParams } from './protocol.js';

function makeEngine(opts: EngineConfigInput & { numBlocks?: number } = {}) {
  const { numBlocks = 256, ...cfg } = opts;
  const config = parseEngineConfig({ blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 8, ...cfg });
  const model = new FakeModel(50, config.blockSize);
  const engine = new LLMEngine({ config, model, numBlocks, vocabSize: 50, maxModelLen: 512, eosTokenIds: [2], connector: null });
  return { engine, model };
}

const greedy = (maxTokens: number, extra: Partial<SamplingParams> = {}): SamplingParams => ({ ...defaultSamplingParams, temperature: 0, maxTokens, ignoreEos: true, ...extra });

async function runAll(engine: LLMEngine): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  while (engine.hasWork()) {
    for (const o of await engine.step()) {
      const list = out.get(o.seq.requestId) ?? [];
      list.push(...o.seq.pendingTokenIds.splice(0));
      out.set(o.seq.requestId, list);
    }
    engine.checkIntegrity();
  }
  return out;
}

const prompts = [
  Array.from({ length: 37 }, (_, i) => (i * 3) % 50),
  [5],
  Array.from({ length: 70 }, (_, i) => (i * 7 + 1) % 50),
  Array.from({ length: 9 }, (_, i) => (i + 4) % 50),
];

test('continuous batching gives the same tokens as one-by-one', async () => {
  const { engine: a } = makeEngine();
  prompts.forEach((p, i) => a.addRequest({ requestId: `r${i}`, promptTokenIds: p, sampling: greedy(12) }));
  const together = await runAll(a);
  for (let i = 0; i < prompts.length; i++) {
    const { engine: b } = makeEngine();
    b.addRequest({ requestId: 'x', promptTokenIds: prompts[i]!, sampling: greedy(12) });
    const alone = await runAll(b);
    assert.deepEqual(together.get(`r${i}`), alone.get('x'), `prompt ${i}`);
    assert.equal(alone.get('x')!.length, 12);
  }
  assert.equal(a.blockManager.numFreeBlocks, a.blockManager.numBlocks);
});

test('chunked prefill respects the token budget and matches an unchunked run', async () => {
  const { engine: small } = makeEngine({ maxNumBatchedTokens: 8 });
  small.addRequest({ requestId: 'a', promptTokenIds: prompts[2]!, sampling: greedy(5) });
  let steps = 0;
  const toks: number[] = [];
  while (small.hasWork()) {
    const out = await small.step();
    steps++;
    for (const o of out) toks.push(...o.seq.pendingTokenIds.splice(0));
  }
  assert.ok(steps >= Math.ceil(70 / 8) + 4, `expected chunked steps, got ${steps}`);
  const { engine: big } = makeEngine({ maxNumBatchedTokens: 512 });
  big.addRequest({ requestId: 'a', promptTokenIds: prompts[2]!, sampling: greedy(5) });
  assert.deepEqual((await runAll(big)).get('a'), toks);
});

test('prefix caching reuses blocks and does not change the output', async () => {
  const shared = Array.from({ length: 40 }, (_, i) => (i * 11) % 50);
  const p1 = [...shared, 1, 2, 3];
  const p2 = [...shared, 4, 5, 6, 7];
  const { engine } = makeEngine();
  engine.addRequest({ requestId: 'a', promptTokenIds: p1, sampling: greedy(4) });
  await runAll(engine);
  const seq = engine.addRequest({ requestId: 'b', promptTokenIds: p2, sampling: greedy(6) });
  const withCache = await runAll(engine);
  assert.equal(seq.numCachedTokens, 40);
  const { engine: off } = makeEngine({ enablePrefixCaching: false });
  const seq2 = off.addRequest({ requestId: 'b', promptTokenIds: p2, sampling: greedy(6) });
  assert.deepEqual((await runAll(off)).get('b'), withCache.get('b'));
  assert.equal(seq2.numCachedTokens, 0);
  assert.ok(engine.stats().prefixCacheHits >= 40);
});

test('a full-prompt hit still computes the last token', async () => {
  const p = Array.from({ length: 16 }, (_, i) => i + 3);
  const { engine } = makeEngine();
  engine.addRequest({ requestId: 'a', promptTokenIds: p, sampling: greedy(3) });
  const first = await runAll(engine);
  const seq = engine.addRequest({ requestId: 'b', promptTokenIds: p, sampling: greedy(3) });
  const second = await runAll(engine);
  assert.equal(seq.numCachedTokens, 12);
  assert.deepEqual(second.get('b'), first.get('a'));
});

test('preemption by recompute when blocks run out keeps outputs identical', async () => {
  const { engine } = makeEngine({ numBlocks: 40, maxNumBatchedTokens: 32 });
  const ps = [0, 1, 2, 3].map((k) => Array.from({ length: 30 }, (_, i) => (i * (k + 2) + k) % 50));
  ps.forEach((p, i) => engine.addRequest({ requestId: `r${i}`, promptTokenIds: p, sampling: greedy(40) }));
  const out = await runAll(engine);
  assert.ok(engine.stats().numPreemptions > 0, 'expected preemptions');
  for (let i = 0; i < ps.length; i++) {
    const { engine: b } = makeEngine();
    b.addRequest({ requestId: 'x', promptTokenIds: ps[i]!, sampling: greedy(40) });
    assert.deepEqual(out.get(`r${i}`), (await runAll(b)).get('x'));
  }
  assert.equal(engine.blockManager.numFreeBlocks, 40);
});

test('abort frees blocks; stop tokens, eos, max tokens end requests', async () => {
  const { engine } = makeEngine();
  engine.addRequest({ requestId: 'a', promptTokenIds: prompts[0]!, sampling: greedy(100) });
  engine.addRequest({ requestId: 'b', promptTokenIds: prompts[1]!, sampling: greedy(100) });
  await engine.step();
  await engine.step();
  engine.finishRequest('a', 'abort');
  const outs = engine.takeOutputs();
  assert.equal(outs.length, 1);
  assert.equal(outs[0]!.seq.finishReason, 'abort');
  engine.checkIntegrity();
  engine.finishRequest('b', 'abort');
  engine.takeOutputs();
  assert.equal(engine.hasWork(), false);
  assert.equal(engine.blockManager.numFreeBlocks, engine.blockManager.numBlocks);

  // stop token: learn the first greedy token, then ask to stop on it
  const { engine: e2 } = makeEngine();
  e2.addRequest({ requestId: 'c', promptTokenIds: prompts[3]!, sampling: greedy(5) });
  const first = (await runAll(e2)).get('c')![0]!;
  e2.addRequest({ requestId: 'd', promptTokenIds: prompts[3]!, sampling: greedy(5, { stopTokenIds: [first] }) });
  let fin: { reason: string | null; stop: unknown; n: number } | null = null;
  while (e2.hasWork()) for (const o of await e2.step()) if (o.finished) fin = { reason: o.seq.finishReason, stop: o.seq.stopReason, n: o.seq.numOutputTokens };
  assert.deepEqual(fin, { reason: 'stop', stop: first, n: 1 });
  // min_tokens masks the stop token
  e2.addRequest({ requestId: 'e', promptTokenIds: prompts[3]!, sampling: greedy(5, { stopTokenIds: [first], minTokens: 3 }) });
  const e = (await runAll(e2)).get('e')!;
  assert.notEqual(e[0], first);
  assert.ok(e.length >= 3);
});

test('seeded sampling is reproducible', async () => {
  const run = async (seed: number) => {
    const { engine } = makeEngine();
    engine.addRequest({ requestId: 's', promptTokenIds: prompts[0]!, sampling: { ...greedy(16), temperature: 1.5, topP: 0.95, seed } });
    return (await runAll(engine)).get('s');
  };
  assert.deepEqual(await run(7), await run(7));
  assert.notDeepEqual(await run(7), await run(8));
});
