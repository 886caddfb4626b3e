import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LLMEngine } from './llm-engine.js';
import { parseEngineConfig, type EngineConfigInput } from './config.js';
import { FakeModel } from './testing/fake-model.js';
import { defaultSamplingParams, type GenerateRequest, type SamplingParams } from './protocol.js';
import type { ForwardBatch } from '../native/binding.js';

/** FakeModel that counts the tokens it computes (prefill work shows up here). */
class CountingModel extends FakeModel {
  tokens = 0;
  copies = 0;
  override forward(b: ForwardBatch): Promise<Float32Array> {
    this.tokens += b.tokenIds.length;
    return super.forward(b);
  }
  override kvScatter(blockIds: Int32Array, numTokens: number, src: Uint8Array): Promise<void> {
    this.copies++;
    return super.kvScatter(blockIds, numTokens, src);
  }
}


function makeEngine(opts: EngineConfigInput & { numBlocks?: number; noCopy?: boolean } = {}) {
  const { numBlocks = 256, noCopy = false, ...cfg } = opts;
  const config = parseEngineConfig({ blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 8, ...cfg });
  const model = new CountingModel(50, config.blockSize);
  // a model that cannot move KV: children recompute the prompt's partial block
  if (noCopy) Object.defineProperty(model, 'kvGather', { value: undefined });
  const engine = new LLMEngine({ config, model, numBlocks, vocabSize: 50, maxModelLen: 512, eosTokenIds: [2], connector: null });
  return { engine, model };
}

const sampling = (maxTokens: number, extra: Partial<SamplingParams> = {}): SamplingParams =>
  ({ ...defaultSamplingParams, temperature: 0, maxTokens, ignoreEos: true, ...extra });
const prompt = Array.from({ length: 37 }, (_, i) => (i * 3) % 50); // 9 full blocks of 4 + 1 token

/** Runs to completion; tokens per (group, index), checking block accounting after every step. */
async function runAll(engine: LLMEngine, onStep?: () => void): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  while (engine.hasWork()) {
    for (const o of await engine.step()) {
      const key = `${o.seq.groupId}/${o.seq.index}`;
      out.set(key, [...(out.get(key) ?? []), ...o.seq.pendingTokenIds.splice(0)]);
    }
    engine.checkIntegrity();
    onStep?.();
  }
  return out;
}

function add(engine: LLMEngine, req: Partial<GenerateRequest> & { sampling: SamplingParams }): void {
  engine.addRequest({ requestId: 'r', promptTokenIds: prompt, ...req });
}

for (const noCopy of [false, true]) test(`n = 3 greedy: one prefill, children share the full prompt blocks, same tokens as n = 1${noCopy ? ' (no KV copy: partial block recomputed)' : ''}`, async () => {
  const { engine: single, model: m1 } = makeEngine();
  add(single, { sampling: sampling(12) });
  const alone = (await runAll(single)).get('r/0')!;
  assert.equal(alone.length, 12);

  const { engine, model } = makeEngine({ noCopy });
  add(engine, { sampling: sampling(12), n: 3 });
  let sharedSeen = false;
  const outs = await runAll(engine, () => {
    const seqs = engine.scheduler.running;
    const parent = seqs.find((s) => s.index === 0);
    const child = seqs.find((s) => s.index === 2);
    if (parent && child) {
      assert.deepEqual(child.blockTable.slice(0, 9), parent.blockTable.slice(0, 9), 'full prompt blocks are shared');
      assert.notEqual(child.blockTable[9], parent.blockTable[9], 'the partial block is the child\'s own');
      sharedSeen = true;
    }
  });
  assert.ok(sharedSeen);
  for (let i = 0; i < 3; i++) assert.deepEqual(outs.get(`r/${i}`), alone, `choice ${i}`);
  // the prompt (37 tokens) is computed once; each child copies (or recomputes) the partial block's 1 token
  assert.equal(m1.tokens, 37 + 11);
  if (noCopy) assert.equal(model.tokens, 37 + 11 + 2 * (1 + 11));
  else {
    assert.equal(model.tokens, 37 + 11 + 2 * 11);
    assert.equal(model.copies, 2);
  }
  assert.equal(engine.blockManager.numFreeBlocks, engine.blockManager.numBlocks);
});

test('n = 2 seeded: reproducible, children differ, child 0 is the n = 1 stream of the same seed', async () => {
  const run = async (n: number, seed: number) => {
    const { engine } = makeEngine();
    add(engine, { sampling: sampling(10, { temperature: 1.5, seed }), n });
    return runAll(engine);
  };
  const a = await run(2, 7);
  const b = await run(2, 7);
  assert.deepEqual([...a.entries()], [...b.entries()]);
  assert.notDeepEqual(a.get('r/0'), a.get('r/1'));
  const one = await run(1, 7);
  assert.deepEqual(one.get('r/0'), a.get('r/0'));
  const next = await run(1, 8); // child 1 draws from seed + 1
  assert.deepEqual(next.get('r/0')!.slice(0, 1), a.get('r/1')!.slice(0, 1));
});

test('a prompt of whole blocks forks without any recompute; max_tokens 1 ends every child at the fork', async () => {
  const { engine, model } = makeEngine();
  engine.addRequest({ requestId: 'w', promptTokenIds: prompt.slice(0, 36), sampling: sampling(4), n: 2 });
  const outs = await runAll(engine);
  assert.equal(outs.get('w/1')!.length, 4);
  assert.equal(model.tokens, 36 + 3 + 3);

  const { engine: e2 } = makeEngine();
  add(e2, { sampling: sampling(1), n: 4 });
  const o2 = await runAll(e2);
  for (let i = 0; i < 4; i++) assert.equal(o2.get(`r/${i}`)!.length, 1);
  assert.equal(e2.blockManager.numFreeBlocks, e2.blockManager.numBlocks);
});

test('aborting the request frees every child, before and after the fork', async () => {
  for (const abortAfterSteps of [1, 3, 6]) {
    const { engine } = makeEngine({ maxNumBatchedTokens: 16 }); // the prompt takes 3 chunked steps
    add(engine, { sampling: sampling(50), n: 3 });
    const finished = new Set<number>();
    for (let s = 0; s < abortAfterSteps; s++) await engine.step();
    engine.finishRequest('r', 'abort');
    for (const o of engine.takeOutputs()) if (o.finished) finished.add(o.seq.index);
    engine.checkIntegrity();
    assert.equal(engine.blockManager.numFreeBlocks, engine.blockManager.numBlocks, `after ${abortAfterSteps} steps`);
    assert.equal(engine.hasWork(), false);
    assert.ok(finished.has(0));
    if (abortAfterSteps > 3) assert.deepEqual([...finished].sort(), [0, 1, 2]);
    // the id is free again
    add(engine, { sampling: sampling(2) });
    await runAll(engine);
  }
});

test('one child ended alone (a stop string) leaves its siblings running', async () => {
  const { engine } = makeEngine();
  add(engine, { sampling: sampling(8), n: 2 });
  const outs = new Map<number, number>();
  let stopped = false;
  while (engine.hasWork()) {
    for (const o of await engine.step()) outs.set(o.seq.index, (outs.get(o.seq.index) ?? 0) + o.seq.pendingTokenIds.splice(0).length);
    if (!stopped && (outs.get(1) ?? 0) >= 2) {
      const child = engine.scheduler.running.find((s) => s.index === 1)!;
      engine.finishSequence(child.requestId, 'stop', 'x');
      engine.takeOutputs();
      stopped = true;
    }
    engine.checkIntegrity();
  }
  assert.equal(outs.get(0), 8);
  assert.ok(outs.get(1)! < 8);
  assert.equal(engine.blockManager.numFreeBlocks, engine.blockManager.numBlocks);
});

test('preemption under a small pool keeps forked children correct', async () => {
  const { engine: big } = makeEngine();
  add(big, { sampling: sampling(20), n: 3 });
  const want = await runAll(big);
  const { engine } = makeEngine({ numBlocks: 20 });
  add(engine, { sampling: sampling(20), n: 3 });
  const got = await runAll(engine);
  assert.ok(engine.scheduler.numPreemptions > 0, 'the pool is small enough to preempt');
  assert.deepEqual([...got.entries()].sort(), [...want.entries()].sort());
  assert.equal(engine.blockManager.numFreeBlocks, 20);
});
