import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LLMEngine } from './llm-engine.js';
import { parseEngineConfig, type EngineConfigInput } from './config.js';
import { FakeModel } from './testing/fake-model.js';
import { defaultSamplingParams, type PromptLogprob, type SamplingParams } from './protocol.js';
import { promptLogprob, maxPromptLogitsChunk } from './prompt-logprobs.js';

const V = 50;
function makeEngine(opts: EngineConfigInput = {}) {
  const config = parseEngineConfig({ blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 8, enablePrefixCaching: true, ...opts });
  return new LLMEngine({ config, model: new FakeModel(V, config.blockSize), numBlocks: 128, vocabSize: V, maxModelLen: 512, eosTokenIds: [2], connector: null });
}
const sp = (extra: Partial<SamplingParams> = {}): SamplingParams => ({ ...defaultSamplingParams, temperature: 0, maxTokens: 2, ignoreEos: true, ...extra });
const prompt = Array.from({ length: 23 }, (_, i) => (i * 7 + 3) % V);

async function promptLogprobsOf(engine: LLMEngine, id: string, k: number): Promise<Array<PromptLogprob | null>> {
  const seq = engine.addRequest({ requestId: id, promptTokenIds: prompt, sampling: sp({ promptLogprobs: k }) });
  while (engine.hasWork()) {
    await engine.step();
    engine.checkIntegrity();
  }
  return seq.promptLogprobs!;
}

test('prompt logprobs: one per prompt token (the first null), equal to scoring each prefix alone; chunked prefill and prefix cache agree', async () => {
  const whole = await promptLogprobsOf(makeEngine(), 'a', 3);
  assert.equal(whole.length, prompt.length);
  assert.equal(whole[0], null);
  // reference: the next-token distribution after each prefix, from a plain request with full logprobs
  for (const i of [1, 5, 11, 22]) {
    const e = makeEngine();
    const seq = e.addRequest({ requestId: 'ref', promptTokenIds: prompt.slice(0, i), sampling: sp({ maxTokens: 1, logprobs: V }) });
    const lps: Array<{ tokenId: number; logprob: number }> = [];
    while (e.hasWork()) await e.step();
    lps.push(...seq.pendingLogprobs[0]!.top);
    const want = lps.find((x) => x.tokenId === prompt[i])!;
    const got = whole[i]!;
    assert.equal(got.tokenId, prompt[i]);
    assert.ok(Math.abs(got.logprob - want.logprob) < 1e-9, `token ${i}`);
    assert.equal(got.rank, lps.findIndex((x) => x.tokenId === prompt[i]) + 1);
    assert.deepEqual(got.top.map((x) => x.tokenId), lps.slice(0, 3).map((x) => x.tokenId));
  }
  const chunked = await promptLogprobsOf(makeEngine({ maxNumBatchedTokens: 5 }), 'b', 3);
  assert.deepEqual(chunked, whole);
  // a second identical request would hit the prefix cache: it still computes (and scores) every position
  const e = makeEngine();
  await promptLogprobsOf(e, 'c', 3);
  assert.deepEqual(await promptLogprobsOf(e, 'd', 3), whole);
});

test('promptLogprob ranks and normalizes one row; the per-step chunk bound follows the vocabulary', () => {
  const row = Float32Array.from([0, 2, 1, 2]);
  const pl = promptLogprob(row, 2, 2);
  const lse = Math.log(1 + 2 * Math.exp(2) + Math.exp(1));
  assert.ok(Math.abs(pl.logprob - (1 - lse)) < 1e-6);
  assert.equal(pl.rank, 3);
  assert.deepEqual(pl.top.map((x) => x.tokenId).sort(), [1, 3]);
  assert.equal(maxPromptLogitsChunk(151936), 110);
  assert.equal(maxPromptLogitsChunk(1 << 30), 1);
});
