// /v1/chat/completions over a real loopback HTTP server and the fake engine.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertNoLeaks, assertOpenAiError, peerHeaders, postJson, postSse, startHarness, type Harness } from './testing/harness.js';

const user = (content: unknown) => ({ messages: [{ role: 'user', content }] });

describe('/v1/chat/completions', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ maxModelLen: 256 }); });
  after(async () => { await h.close(); });

  it('renders the chat template and answers with an assistant message', async () => {
    const r = await postJson(h.base, '/v1/chat/completions', { ...user('hi'), max_tokens: 5 });
    assert.equal(r.status, 200);
    assert.match(r.json.id, /^chatcmpl-/);
    assert.equal(r.json.object, 'chat.completion');
    const c = r.json.choices[0];
    assert.deepEqual(c.message, { role: 'assistant', content: 'The q', reasoning_content: null, tool_calls: [] });
    assert.equal(c.finish_reason, 'length');
    assert.equal(c.logprobs, null);
    const prompt = '<|user|>hi\n<|assistant|>';
    assert.deepEqual(h.engine.requests.at(-1)!.promptTokenIds, [...Buffer.from(prompt)]); // no BOS: the template owns it
    assert.deepEqual(r.json.usage, { prompt_tokens: prompt.length, total_tokens: prompt.length + 5, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 0 } });
    await assertNoLeaks(h.engine);
  });

  it('defaults max_tokens to what the context leaves; max_completion_tokens wins over max_tokens', async () => {
    await postJson(h.base, '/v1/chat/completions', { ...user('hi'), stop: 'lazy' });
    const promptLen = '<|user|>hi\n<|assistant|>'.length;
    assert.equal(h.engine.requests.at(-1)!.sampling.maxTokens, 256 - promptLen);
    const r = await postJson(h.base, '/v1/chat/completions', { ...user('hi'), max_tokens: 50, max_completion_tokens: 3 });
    assert.equal(r.json.usage.completion_tokens, 3);
  });

  it('joins text content parts and passes chat_template_kwargs to the template', async () => {
    const r = await postJson(h.base, '/v1/chat/completions', {
      ...user([{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }]), max_tokens: 1,
      chat_template_kwargs: { enable_thinking: false },
    });
    assert.equal(r.status, 200);
    assert.equal(Buffer.from(h.engine.requests.at(-1)!.promptTokenIds).toString(), '<|user|>a\nb\n<|assistant|><no_think>');
    const img = await postJson(h.base, '/v1/chat/completions', { ...user([{ type: 'image_url', image_url: { url: 'x' } }]) });
    assertOpenAiError(img, 400, 'messages.0.content', 'not supported');
  });

  it('returns chat-style logprobs', async () => {
    const r = await postJson(h.base, '/v1/chat/completions', { ...user('hi'), max_tokens: 3, logprobs: true, top_logprobs: 2 });
    const content = r.json.choices[0].logprobs.content;
    assert.equal(content.length, 3);
    assert.deepEqual(content.map((e: any) => e.token), ['T', 'h', 'e']);
    assert.deepEqual(content[0].bytes, [84]);
    assert.equal(content[0].top_logprobs.length, 2);
    assert.deepEqual(Object.keys(content[0].top_logprobs[0]).sort(), ['bytes', 'logprob', 'token']);
    const bad = await postJson(h.base, '/v1/chat/completions', { ...user('hi'), top_logprobs: 2 });
    assertOpenAiError(bad, 400, 'top_logprobs');
  });

  it('returns token ids and kv_transfer_params', async () => {
    const body = { ...user('hi'), max_tokens: 2, return_token_ids: true, kv_transfer_params: { do_remote_decode: true } };
    const r = await postJson(h.base, '/v1/chat/completions', body, peerHeaders('/v1/chat/completions', body));
    assert.deepEqual(r.json.choices[0].token_ids, [84, 104]);
    assert.equal(r.json.prompt_token_ids.length, r.json.usage.prompt_tokens);
    assert.equal(r.json.kv_transfer_params.do_remote_prefill, true);
  });

  it('streams a role delta, content deltas, the finish, usage and [DONE]', async () => {
    const s = await postSse(h.base, '/v1/chat/completions', {
      ...user('hi'), max_tokens: 6, stream: true, stream_options: { include_usage: true },
    }, { 'x-request-id': 'chat-1' });
    assert.equal(s.status, 200);
    assert.equal(s.headers.get('x-request-id'), 'chat-1');
    assert.equal(h.engine.requests.at(-1)!.requestId, 'chat-1');
    const ev = s.events;
    assert.equal(ev.at(-1), '[DONE]');
    assert.deepEqual(ev[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.equal(ev[0].object, 'chat.completion.chunk');
    const content = ev.slice(1, -2);
    assert.equal(content.map((e) => e.choices[0].delta.content ?? '').join(''), 'The qu');
    assert.equal(content.at(-1).choices[0].finish_reason, 'length');
    assert.ok(content.slice(0, -1).every((e) => e.choices[0].finish_reason === null));
    assert.deepEqual(ev.at(-2).choices, []);
    assert.equal(ev.at(-2).usage.completion_tokens, 6);
    assert.ok(ev.slice(0, -1).every((e) => e.id === 'chatcmpl-chat-1'));
    await assertNoLeaks(h.engine);
  });

  it('adds running usage to every chunk with continuous_usage_stats', async () => {
    const s = await postSse(h.base, '/v1/chat/completions', {
      ...user('hi'), max_tokens: 3, stream: true, stream_options: { include_usage: true, continuous_usage_stats: true },
    });
    const content = s.events.slice(1, -2);
    assert.deepEqual(content.map((e) => e.usage.completion_tokens), [1, 2, 3]);
    assert.equal(s.events.at(-2).usage.completion_tokens, 3);
  });

  it('streams chat logprobs with each delta', async () => {
    const s = await postSse(h.base, '/v1/chat/completions', { ...user('hi'), max_tokens: 3, stream: true, logprobs: true });
    const withLp = s.events.slice(1, -1).flatMap((e) => e.choices[0].logprobs.content);
    assert.deepEqual(withLp.map((e: any) => e.token), ['T', 'h', 'e']);
  });
});

describe('/v1/chat/completions without a chat template', () => {
  it('answers 400 and keeps serving completions', async () => {
    const h = await startHarness({ hasChatTemplate: false });
    try {
      const r = await postJson(h.base, '/v1/chat/completions', user('hi'));
      assertOpenAiError(r, 400, 'messages', 'chat template');
      const t = await postJson(h.base, '/tokenize', user('hi'));
      assertOpenAiError(t, 400, 'messages');
      const ok = await postJson(h.base, '/v1/completions', { prompt: 'hi', max_tokens: 1 });
      assert.equal(ok.status, 200);
      await assertNoLeaks(h.engine);
    } finally {
      await h.close();
    }
  });
});
