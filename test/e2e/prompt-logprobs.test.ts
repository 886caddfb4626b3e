// Issue 13 item 3: completions echo with logprobs, vLLM's prompt_logprobs (completions and chat) and chat
// echo, against `pdserve serve` (stories260k) with the openai SDK where it has the fields.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { deviceServeArgs } from '../helpers/fixtures.js';
import { postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';

const M = 'stories260k';
let s: Spawned;
let client: OpenAI;
const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside';

before(async () => {
  s = await spawnPdserve(['serve', '--max-num-batched-tokens', '8', ...deviceServeArgs()]); // chunked prefill of the prompt
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  await s.stop();
});

test('echo with logprobs: the prompt tokens lead (first null), offsets index the echoed text; streamed the same', async () => {
  const r = await client.completions.create({ model: M, prompt, echo: true, logprobs: 2, max_tokens: 6, temperature: 0 });
  const c = r.choices[0]!;
  const lp = c.logprobs!;
  assert.ok(c.text.startsWith(prompt));
  const nPrompt = r.usage!.prompt_tokens;
  assert.equal(lp.tokens!.length, nPrompt + 6);
  assert.equal(lp.token_logprobs![0], null);
  assert.equal(lp.top_logprobs![0], null);
  for (let i = 1; i < lp.tokens!.length; i++) {
    assert.ok(lp.token_logprobs![i]! <= 0, `token ${i}`);
    assert.ok(Object.keys(lp.top_logprobs![i]!).length >= 2);
  }
  lp.tokens!.forEach((t, i) => {
    if (i > 0) assert.equal(c.text.slice(lp.text_offset![i], lp.text_offset![i]! + t.length), t, `offset of token ${i}`);
  });
  assert.equal(lp.tokens!.slice(1).join(''), c.text, 'the tokens after BOS spell the text');
  // the generated part equals a plain logprobs request's
  const plain = await client.completions.create({ model: M, prompt, logprobs: 2, max_tokens: 6, temperature: 0 });
  assert.deepEqual(lp.token_logprobs!.slice(nPrompt), plain.choices[0]!.logprobs!.token_logprobs);
  const stream = await client.completions.create({ model: M, prompt, echo: true, logprobs: 2, max_tokens: 6, temperature: 0, stream: true });
  const tokens: string[] = [];
  const offsets: number[] = [];
  let text = '';
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      text += ch.text;
      tokens.push(...(ch.logprobs?.tokens ?? []));
      offsets.push(...(ch.logprobs?.text_offset ?? []));
    }
  }
  assert.equal(text, c.text);
  assert.deepEqual(tokens, lp.tokens);
  assert.deepEqual(offsets, lp.text_offset);
});

test('prompt_logprobs: one entry per prompt token (first null) holding the token with its rank, and the top k', async () => {
  const r = await postJson(`${s.url}/v1/completions`, { prompt, prompt_logprobs: 3, max_tokens: 2, temperature: 0, return_token_ids: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const ids: number[] = r.json.choices[0].prompt_token_ids;
  const pl = r.json.choices[0].prompt_logprobs;
  assert.equal(pl.length, ids.length);
  assert.equal(pl[0], null);
  for (let i = 1; i < ids.length; i++) {
    const d = pl[i];
    assert.ok(d[String(ids[i])], `prompt token ${i} in its dict`);
    assert.ok(Object.keys(d).length >= 3 && Object.keys(d).length <= 4);
    const ranks = Object.values(d).map((e: any) => e.rank);
    assert.ok(ranks.includes(1));
  }
  // agrees with echo's logprobs for the same tokens
  const e = await client.completions.create({ model: M, prompt, echo: true, logprobs: 0, max_tokens: 1, temperature: 0 });
  for (let i = 1; i < ids.length; i++) assert.ok(Math.abs(e.choices[0]!.logprobs!.token_logprobs![i]! - pl[i][String(ids[i])].logprob) < 1e-6);
  const chat = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Once upon a time' }], prompt_logprobs: 1, max_tokens: 2 });
  assert.equal(chat.status, 200, JSON.stringify(chat.json));
  assert.equal(chat.json.prompt_logprobs.length, chat.json.usage.prompt_tokens);
  const bad = await postJson(`${s.url}/v1/completions`, { prompt, prompt_logprobs: 1, stream: true });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'prompt_logprobs');
  const integrity = await (await fetch(`${s.url}/debug/integrity`)).json();
  assert.equal(integrity.ok, true);
});

test('chat echo: a final assistant message is echoed before the continuation, streamed and not', async () => {
  const messages = [{ role: 'user' as const, content: 'Tell me a story.' }, { role: 'assistant' as const, content: 'Once upon a time' }];
  const body = { model: M, messages, echo: true, continue_final_message: true, add_generation_prompt: false, max_tokens: 6, temperature: 0 };
  const r = await client.chat.completions.create(body as never) as OpenAI.ChatCompletion;
  const content = r.choices[0]!.message.content!;
  assert.ok(content.startsWith('Once upon a time') && content.length > 'Once upon a time'.length, content);
  const noEcho = await client.chat.completions.create({ ...body, echo: false } as never) as OpenAI.ChatCompletion;
  assert.equal(content, 'Once upon a time' + noEcho.choices[0]!.message.content);
  const stream = await client.chat.completions.create({ ...body, stream: true } as never) as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>;
  let streamed = '';
  for await (const chunk of stream) for (const ch of chunk.choices) streamed += ch.delta.content ?? '';
  assert.equal(streamed, content);
  // the last message is the user's: nothing to echo
  const u = await client.chat.completions.create({ model: M, messages: [messages[0]!], echo: true, max_tokens: 4, temperature: 0 } as never) as OpenAI.ChatCompletion;
  const v = await client.chat.completions.create({ model: M, messages: [messages[0]!], max_tokens: 4, temperature: 0 });
  assert.equal(u.choices[0]!.message.content, v.choices[0]!.message.content);
});
