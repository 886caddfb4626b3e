// Issue 13 acceptance 3, with the official openai SDK against `pdserve serve` (stories260k, the shipped
// default): n = 2 with a seed returns two reproducible choices from one prefill (the prompt counted once
// in usage and in vllm:prompt_tokens_total), streamed choices carry their index, best_of keeps the most
// likely candidates, and logit_bias -100 on the greedy token changes the greedy output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { deviceServeArgs } from '../helpers/fixtures.js';
import { spawnPdserve, type Spawned } from '../helpers/spawn-server.js';

const M = 'stories260k';
let s: Spawned;
let client: OpenAI;
const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her'; // > 1 KV block

before(async () => {
  s = await spawnPdserve(['serve', ...deviceServeArgs()]);
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  await s.stop();
});

async function promptTokensTotal(): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const m = /^vllm:prompt_tokens_total\{[^}]*\} (\d+)/m.exec(text);
  assert.ok(m, 'vllm:prompt_tokens_total exported');
  return Number(m[1]);
}

test('n = 2 with a seed: two reproducible choices, one prefill, prompt counted once', async () => {
  const before = await promptTokensTotal();
  const req = { model: M, prompt, n: 2, seed: 11, temperature: 1, max_tokens: 24 } as const;
  const a = await client.completions.create(req);
  const mid = await promptTokensTotal();
  const b = await client.completions.create(req);
  assert.equal(a.choices.length, 2);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1]);
  assert.deepEqual(b.choices.map((c) => c.text), a.choices.map((c) => c.text), 'same seed, same choices');
  assert.notEqual(a.choices[0]!.text, a.choices[1]!.text, 'each choice has its own sampling stream');
  const promptTokens = a.usage!.prompt_tokens;
  assert.ok(promptTokens > 16);
  assert.equal(mid - before, promptTokens, 'the engine counted the prompt once');
  assert.equal(a.usage!.completion_tokens, a.choices.length * 24);
  // greedy n = 3 is three copies of the n = 1 answer: the forked KV (shared blocks + the copied partial block) is right
  const one = await client.completions.create({ model: M, prompt, max_tokens: 20, temperature: 0 });
  const three = await client.completions.create({ model: M, prompt, max_tokens: 20, temperature: 0, n: 3 });
  assert.deepEqual(three.choices.map((c) => c.text), [0, 1, 2].map(() => one.choices[0]!.text));
  // chat: n choices too
  const chat = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: 'Once upon a time' }], n: 2, seed: 5, max_tokens: 12 });
  assert.deepEqual(chat.choices.map((c) => c.index), [0, 1]);
  assert.ok(chat.choices.every((c) => typeof c.message.content === 'string' && c.message.content.length > 0));
});

test('n = 2 streamed: chunks carry their choice index and assemble to the non-streamed choices', async () => {
  const req = { model: M, prompt, n: 2, seed: 3, temperature: 1, max_tokens: 16 };
  const whole = await client.completions.create(req);
  const stream = await client.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  const texts = ['', ''];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    for (const c of chunk.choices) texts[c.index] += c.text;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.deepEqual(texts, whole.choices.map((c) => c.text));
  assert.equal(usage?.prompt_tokens, whole.usage!.prompt_tokens);
  // logprob token texts are decoded in each choice's own context: streamed == whole, and they spell each text
  const lpReq = { ...req, logprobs: 1 };
  const lpWhole = await client.completions.create(lpReq);
  const lpStream = await client.completions.create({ ...lpReq, stream: true });
  const toks: string[][] = [[], []];
  for await (const chunk of lpStream) for (const c of chunk.choices) toks[c.index]!.push(...(c.logprobs?.tokens ?? []));
  lpWhole.choices.forEach((c, i) => {
    assert.deepEqual(toks[i], c.logprobs!.tokens);
    assert.equal(c.logprobs!.tokens!.join(''), c.text);
  });
  const chat = await client.chat.completions.create({ model: M, messages: [{ role: 'user', content: 'hi' }], n: 2, seed: 2, max_tokens: 8, stream: true });
  const seen = new Set<number>();
  for await (const chunk of chat) for (const c of chunk.choices) seen.add(c.index);
  assert.deepEqual([...seen].sort(), [0, 1]);
});

test('best_of: the n most likely of best_of candidates; not with stream', async () => {
  const r = await client.completions.create({ model: M, prompt, best_of: 4, n: 2, seed: 9, temperature: 1, max_tokens: 12, logprobs: 0 });
  assert.equal(r.choices.length, 2);
  const score = (c: OpenAI.CompletionChoice) => c.logprobs!.token_logprobs!.reduce((a, b) => a + b, 0);
  assert.ok(score(r.choices[0]!) >= score(r.choices[1]!), 'best first');
  // the candidates are the n = 4 choices of the same seed: best_of returns the top two of them
  const all = await client.completions.create({ model: M, prompt, n: 4, seed: 9, temperature: 1, max_tokens: 12, logprobs: 0 });
  const ranked = [...all.choices].sort((x, y) => score(y) - score(x)).slice(0, 2).map((c) => c.text);
  assert.deepEqual(r.choices.map((c) => c.text), ranked);
  const noLp = await client.completions.create({ model: M, prompt, best_of: 2, max_tokens: 4 });
  assert.equal(noLp.choices.length, 1);
  assert.equal(noLp.choices[0]!.logprobs, null, 'logprobs only when asked');
  await assert.rejects(client.completions.create({ model: M, prompt, best_of: 2, stream: true }), (e: unknown) =>
    e instanceof OpenAI.BadRequestError && (e.error as { param?: string }).param === 'best_of');
});

test('logit_bias -100 on the greedy token changes the greedy output (completions and chat)', async () => {
  const body = { model: M, prompt: 'Once upon a time', max_tokens: 8, temperature: 0, return_token_ids: true } as Record<string, unknown>;
  const plain = (await client.completions.create(body as never)) as unknown as { choices: Array<{ text: string; token_ids: number[] }> };
  const greedy = plain.choices[0]!.token_ids[0]!;
  const biased = (await client.completions.create({ ...body, logit_bias: { [greedy]: -100 } } as never)) as unknown as typeof plain;
  assert.notEqual(biased.choices[0]!.token_ids[0], greedy);
  assert.notEqual(biased.choices[0]!.text, plain.choices[0]!.text);
  // +100 on another token forces it
  const forced = (await client.completions.create({ ...body, max_tokens: 1, logit_bias: { '300': 100 } } as never)) as unknown as typeof plain;
  assert.equal(forced.choices[0]!.token_ids[0], 300);
  const messages = [{ role: 'user' as const, content: 'Once upon a time' }];
  const c1 = await client.chat.completions.create({ model: M, messages, max_tokens: 8, temperature: 0 });
  const c2 = await client.chat.completions.create({ model: M, messages, max_tokens: 8, temperature: 0, logit_bias: { [greedy]: -100 } });
  assert.notEqual(c2.choices[0]!.message.content, c1.choices[0]!.message.content);
  await assert.rejects(client.completions.create({ model: M, prompt: 'x', logit_bias: { '1': 200 } }), OpenAI.BadRequestError);
});

test('aborting an n = 4 stream frees every forked sequence', async () => {
  const ac = new AbortController();
  const stream = await client.completions.create({ model: M, prompt, n: 4, max_tokens: 200, ignore_eos: true, stream: true } as never, { signal: ac.signal });
  let chunks = 0;
  const seen = new Set<number>();
  try {
    for await (const chunk of stream as unknown as AsyncIterable<OpenAI.Completion>) {
      for (const c of chunk.choices) seen.add(c.index);
      if (++chunks === 12) ac.abort();
    }
  } catch {
    /* the SDK reports the abort */
  }
  assert.ok(chunks >= 12 && chunks < 4 * 200, `aborted mid-stream after ${chunks} chunks`);
  assert.ok(seen.size >= 2, 'several choices were streaming');
  const deadline = Date.now() + 10_000;
  let st: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  while (Date.now() < deadline) {
    st = await (await fetch(`${s.url}/debug/integrity`)).json();
    if (st.num_requests_running === 0 && st.num_requests_waiting === 0 && st.blocks_free === st.blocks_total) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(st.ok, true, JSON.stringify(st));
  assert.equal(st.num_requests_running, 0);
  assert.equal(st.blocks_free, st.blocks_total, 'KV blocks freed');
  const after = await client.completions.create({ model: M, prompt: 'Once', max_tokens: 2 });
  assert.equal(after.choices.length, 1);
});
