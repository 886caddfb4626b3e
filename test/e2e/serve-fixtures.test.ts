// Issue 2 acceptance 1–3: every fixture model served over HTTP reproduces the transformers
// reference (greedy tokens under the margin rule, last-position logits), concurrently and one by one,
// and prefix caching changes nothing but cached_tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fixturesOrSkip, fixtureModels, readReference, comparableSteps, deviceServeArgs, type ReferenceCase } from '../helpers/fixtures.js';
import { spawnPdserve, postJson, type Spawned } from '../helpers/spawn-server.js';

async function complete(s: Spawned, c: ReferenceCase, extra: Record<string, unknown> = {}) {
  const r = await postJson(`${s.url}/v1/completions`, {
    prompt: c.prompt,
    max_tokens: c.greedy.length,
    temperature: 0,
    ignore_eos: true,
    return_token_ids: true,
    ...extra,
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json;
}

function assertGreedy(model: string, i: number, c: ReferenceCase, got: number[]) {
  const n = comparableSteps(c);
  assert.deepEqual(got.slice(0, n), c.greedy.slice(0, n), `${model} case ${i} (prompt ${c.prompt.length} tokens): first ${n} greedy tokens`);
}

for (const model of fixtureModels) {
  test(`${model}: reference greedy tokens and logits over HTTP, batched == sequential`, async (t) => {
    const fx = fixturesOrSkip(t);
    if (!fx) return;
    const ref = readReference(fx, model);
    const s = await spawnPdserve(['serve', join(fx, 'models', model), '--max-num-batched-tokens', '512', ...deviceServeArgs()]);
    try {
      // all at once (continuous batching, chunked prefill of the long prompts)
      const together = await Promise.all(ref.cases.map((c) => complete(s, c)));
      together.forEach((j, i) => assertGreedy(model, i, ref.cases[i]!, j.choices[0].token_ids));
      // one by one
      for (let i = 0; i < ref.cases.length; i++) {
        const j = await complete(s, ref.cases[i]!);
        assert.deepEqual(j.choices[0].token_ids, together[i].choices[0].token_ids, `${model} case ${i}: batched != sequential`);
      }
      // last-position logits: logprob differences equal logit differences
      for (const [i, c] of ref.cases.entries()) {
        const j = await complete(s, c, { max_tokens: 1, logprobs: 20, return_tokens_as_token_ids: true });
        const top: Record<string, number> = j.choices[0].logprobs.top_logprobs[0];
        const lp = (id: number) => top[`token_id:${id}`];
        const { ids, values } = c.last_logits_top16;
        const base = lp(ids[0]!);
        assert.ok(base !== undefined, `${model} case ${i}: top-1 id ${ids[0]} missing from logprobs`);
        ids.forEach((id, k) => {
          const got = lp(id);
          assert.ok(got !== undefined, `${model} case ${i}: id ${id} missing from top logprobs`);
          const diff = got! - base! - (values[k]! - values[0]!);
          assert.ok(Math.abs(diff) < 2e-3, `${model} case ${i}: logit of ${id} off by ${diff}`);
        });
      }
    } finally {
      await s.stop();
    }
  });
}

test('stories260K: "Once upon a time" gives the reference text', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const ref = readReference(fx, 'stories260K');
  const c = ref.cases.find((x) => x.prompt_text === 'Once upon a time')!;
  const s = await spawnPdserve(['serve', join(fx, 'models', 'stories260K'), ...deviceServeArgs()]);
  try {
    const r = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: c.greedy.length, temperature: 0, ignore_eos: true, return_token_ids: true });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.prompt_token_ids, c.prompt);
    assert.equal(r.json.choices[0].text, c.greedy_text);
  } finally {
    await s.stop();
  }
});

test('prefix caching: shared 512-token prefix is reused and changes nothing', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const model = 'qwen3-tiny';
  const ref = readReference(fx, model);
  // the two cases sharing a 512-token prefix
  const pairs = ref.cases.filter((c) => c.prompt.length > 512 && ref.cases.some((d) => d !== c && d.prompt.length > 512 && d.prompt.slice(0, 512).join() === c.prompt.slice(0, 512).join()));
  assert.equal(pairs.length, 2);
  const on = await spawnPdserve(['serve', join(fx, 'models', model), ...deviceServeArgs()]);
  const off = await spawnPdserve(['serve', join(fx, 'models', model), '--no-enable-prefix-caching', ...deviceServeArgs()]);
  try {
    const a1 = await complete(on, pairs[0]!);
    const b1 = await complete(on, pairs[1]!);
    assert.ok(b1.usage.prompt_tokens_details.cached_tokens >= 496, `cached_tokens ${b1.usage.prompt_tokens_details.cached_tokens}`);
    const a2 = await complete(off, pairs[0]!);
    const b2 = await complete(off, pairs[1]!);
    assert.equal(b2.usage.prompt_tokens_details.cached_tokens, 0);
    assert.deepEqual(a1.choices[0].token_ids, a2.choices[0].token_ids);
    assert.deepEqual(b1.choices[0].token_ids, b2.choices[0].token_ids);
    assertGreedy(model, 8, pairs[1]!, b1.choices[0].token_ids);
  } finally {
    await Promise.all([on.stop(), off.stop()]);
  }
});
