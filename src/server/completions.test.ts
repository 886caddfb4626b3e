// /v1/completions over a real loopback HTTP server and the fake engine.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PdsError } from '../util/errors.js';
import { FAKE_BOS, FAKE_EOS } from './testing/fake-tokenizer.js';
import { assertNoLeaks, assertOpenAiError, peerHeaders, postJson, postSse, startHarness, type Harness } from './testing/harness.js';

const PHRASE = 'The quick brown fox jumps over the lazy dog. ';

describe('/v1/completions', () => {
  let h: Harness;
  before(async () => { h = await startHarness(); });
  after(async () => { await h.close(); });

  it('answers a string prompt with text, usage and finish_reason length', async () => {
    const r = await postJson(h.base, '/v1/completions', { model: 'fake-model', prompt: 'hello', max_tokens: 9 });
    assert.equal(r.status, 200);
    assert.match(r.json.id, /^cmpl-/);
    assert.equal(r.json.object, 'text_completion');
    assert.equal(r.json.model, 'fake-model');
    assert.equal(typeof r.json.created, 'number');
    assert.deepEqual(r.json.choices, [{ index: 0, text: PHRASE.slice(0, 9), logprobs: null, finish_reason: 'length', stop_reason: null }]);
    assert.deepEqual(r.json.usage, { prompt_tokens: 6, total_tokens: 15, completion_tokens: 9, prompt_tokens_details: { cached_tokens: 0 } });
    assert.equal(r.json.kv_transfer_params, null);
    const sent = h.engine.requests.at(-1)!;
    assert.deepEqual(sent.promptTokenIds, [FAKE_BOS, ...Buffer.from('hello')]);
    assert.equal(sent.sampling.maxTokens, 9);
    await assertNoLeaks(h.engine);
  });

  it('defaults max_tokens to 16 and passes sampling fields through', async () => {
    const r = await postJson(h.base, '/v1/completions', {
      prompt: 'x', temperature: 0.5, top_p: 0.9, top_k: 40, min_p: 0.1, seed: 7, repetition_penalty: 1.1,
      presence_penalty: 0.5, frequency_penalty: -0.5, stop_token_ids: [3], ignore_eos: true, min_tokens: 2,
      skip_special_tokens: false, include_stop_str_in_output: true, user: 'u',
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.usage.completion_tokens, 16);
    const s = h.engine.requests.at(-1)!.sampling;
    assert.deepEqual(s, {
      temperature: 0.5, topP: 0.9, topK: 40, minP: 0.1, seed: 7, repetitionPenalty: 1.1, presencePenalty: 0.5,
      frequencyPenalty: -0.5, maxTokens: 16, minTokens: 2, stop: [], stopTokenIds: [3], ignoreEos: true,
      includeStopStrInOutput: true, logprobs: null, skipSpecialTokens: false,
    });
  });

  it('stops on a stop string (excluded) and reports stop_reason', async () => {
    const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 40, stop: ['brown', 'zzz'] });
    assert.equal(r.json.choices[0].text, 'The quick ');
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.equal(r.json.choices[0].stop_reason, 'brown');
    const inc = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 40, stop: 'brown', include_stop_str_in_output: true });
    assert.equal(inc.json.choices[0].text, 'The quick brown');
  });

  it('stops on a stop token id and reports it', async () => {
    const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 40, stop_token_ids: ['q'.charCodeAt(0)] });
    assert.equal(r.json.choices[0].text, 'The ');
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.equal(r.json.choices[0].stop_reason, 'q'.charCodeAt(0));
    assert.equal(r.json.usage.completion_tokens, 5);
  });

  it('accepts token-id prompts and returns token ids when asked', async () => {
    const r = await postJson(h.base, '/v1/completions', { prompt: [72, 105], max_tokens: 3, return_token_ids: true });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.choices[0].prompt_token_ids, [72, 105]);
    assert.deepEqual(r.json.choices[0].token_ids, [...Buffer.from('The')]);
    assert.equal(r.json.usage.prompt_tokens, 2);
  });

  it('returns completion-style logprobs', async () => {
    const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 4, logprobs: 2 });
    const lp = r.json.choices[0].logprobs;
    assert.deepEqual(lp.tokens, ['T', 'h', 'e', ' ']);
    assert.deepEqual(lp.text_offset, [0, 1, 2, 3]);
    assert.equal(lp.token_logprobs.length, 4);
    assert.ok(lp.token_logprobs.every((x: number) => x <= 0));
    assert.equal(lp.top_logprobs.length, 4);
    for (let i = 0; i < 4; i++) {
      assert.equal(Object.keys(lp.top_logprobs[i]).length, 2);
      assert.equal(lp.top_logprobs[i][lp.tokens[i]], lp.token_logprobs[i]);
    }
  });

  it('gives one choice per prompt for list prompts, each its own engine request', async () => {
    const before = h.engine.requests.length;
    const r = await postJson(h.base, '/v1/completions', { prompt: ['ab', 'cde', 'f'], max_tokens: 2, return_token_ids: true });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.choices.map((c: any) => c.index), [0, 1, 2]);
    assert.deepEqual(r.json.choices.map((c: any) => c.prompt_token_ids.length), [3, 4, 2]);
    assert.equal(r.json.usage.prompt_tokens, 9);
    assert.equal(r.json.usage.completion_tokens, 6);
    const reqs = h.engine.requests.slice(before);
    assert.equal(reqs.length, 3);
    assert.equal(new Set(reqs.map((q) => q.requestId)).size, 3);
    const ids = await postJson(h.base, '/v1/completions', { prompt: [[1, 2], [3]], max_tokens: 1 });
    assert.equal(ids.json.choices.length, 2);
    assert.equal(ids.json.usage.prompt_tokens, 3);
    await assertNoLeaks(h.engine);
  });

  it('echo prepends the prompt text', async () => {
    const r = await postJson(h.base, '/v1/completions', { prompt: 'Hi ', max_tokens: 3, echo: true });
    assert.equal(r.json.choices[0].text, 'Hi The');
  });

  it('reports cached_tokens from the engine prefix cache', async () => {
    const prompt = 'x'.repeat(40); // 41 tokens with BOS: two full 16-token blocks can hit
    await postJson(h.base, '/v1/completions', { prompt, max_tokens: 1 });
    const r = await postJson(h.base, '/v1/completions', { prompt, max_tokens: 1 });
    assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 32);
  });

  it('passes kv_transfer_params of a signed (peer) request to the engine and echoes the final ones', async () => {
    const body = { prompt: 'abc', max_tokens: 1, kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false } };
    const r = await postJson(h.base, '/v1/completions', body, peerHeaders('/v1/completions', body));
    assert.deepEqual(h.engine.requests.at(-1)!.kvTransferParams, { do_remote_decode: true, do_remote_prefill: false });
    assert.equal(r.json.kv_transfer_params.do_remote_prefill, true);
    assert.equal(r.json.kv_transfer_params.remote_request_id, h.engine.requests.at(-1)!.requestId);
    assert.ok(Array.isArray(r.json.kv_transfer_params.remote_block_ids));
  });

  it('uses X-Request-Id as the engine request id and echoes it', async () => {
    const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 1 }, { 'x-request-id': 'req-42' });
    assert.equal(r.headers.get('x-request-id'), 'req-42');
    assert.equal(h.engine.requests.at(-1)!.requestId, 'req-42');
    assert.equal(r.json.id, 'cmpl-req-42');
    const list = await postJson(h.base, '/v1/completions', { prompt: ['a', 'b'], max_tokens: 1 }, { 'x-request-id': 'req-43' });
    assert.equal(list.status, 200);
    assert.deepEqual(h.engine.requests.slice(-2).map((q) => q.requestId).sort(), ['req-43-0', 'req-43-1']);
  });

  it('keeps engine ids unique when concurrent requests reuse an X-Request-Id', async () => {
    const rs = await Promise.all([0, 1, 2].map(() =>
      postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 20 }, { 'x-request-id': 'same' })));
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    await assertNoLeaks(h.engine);
  });

  it('maps a PdsError thrown by the engine through its status', async () => {
    h.engine.nextError = new PdsError('PDS_ERR_OVERLOADED', 'too many requests in flight');
    const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 2 });
    assertOpenAiError(r, 429, null, 'too many requests');
    assert.equal(r.json.error.type, 'RateLimitError');
    h.engine.nextError = new Error('boom');
    const r2 = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 2 });
    assertOpenAiError(r2, 500, null, 'boom');
    const ok = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 2 });
    assert.equal(ok.status, 200);
    await assertNoLeaks(h.engine);
  });

  it('fails a whole list request when one prompt fails, freeing the others', async () => {
    h.engine.nextError = new PdsError('PDS_ERR_UNAVAILABLE', 'engine draining');
    const r = await postJson(h.base, '/v1/completions', { prompt: ['a', 'b', 'c'], max_tokens: 50 });
    assertOpenAiError(r, 503, null, 'engine draining');
    await assertNoLeaks(h.engine);
  });
});

describe('/v1/completions streaming', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ text: 'Añ☕b ' }); });
  after(async () => { await h.close(); });

  it('streams text chunks, a finish chunk, a usage chunk and [DONE]', async () => {
    const full = await postJson(h.base, '/v1/completions', { prompt: 'hey', max_tokens: 12 });
    const s = await postSse(h.base, '/v1/completions', {
      prompt: 'hey', max_tokens: 12, stream: true, stream_options: { include_usage: true },
    });
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type')!, /^text\/event-stream/);
    assert.equal(s.events.at(-1), '[DONE]');
    const usage = s.events.at(-2);
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, full.json.usage);
    const chunks = s.events.slice(0, -2);
    assert.ok(chunks.length > 2);
    for (const c of chunks) {
      assert.equal(c.object, 'text_completion');
      assert.equal(c.id, chunks[0].id);
      assert.ok(!c.choices[0].text.includes('\uFFFD'), 'a chunk split a UTF-8 character');
    }
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), full.json.choices[0].text);
    assert.equal(full.json.choices[0].text, 'Añ☕b Añ'); // 12 bytes end inside ☕: the partial character is dropped
    assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
    await assertNoLeaks(h.engine);
  });

  it('omits the usage chunk unless asked', async () => {
    const s = await postSse(h.base, '/v1/completions', { prompt: 'hey', max_tokens: 3, stream: true });
    assert.equal(s.events.at(-1), '[DONE]');
    assert.ok(s.events.slice(0, -1).every((e) => e.choices.length === 1 && !('usage' in e && e.usage)));
  });

  it('streams list prompts with choices by index, and token ids / logprobs per chunk', async () => {
    const s = await postSse(h.base, '/v1/completions', {
      prompt: ['p0', 'p1'], max_tokens: 4, stream: true, return_token_ids: true, logprobs: 1,
      stream_options: { include_usage: true },
    });
    const chunks = s.events.filter((e) => e !== '[DONE]' && e.choices.length);
    for (const idx of [0, 1]) {
      const mine = chunks.filter((c) => c.choices[0].index === idx);
      assert.equal(mine.flatMap((c) => c.choices[0].token_ids).length, 4);
      assert.deepEqual(mine[0].choices[0].prompt_token_ids, [FAKE_BOS, 112, 48 + idx]);
      assert.equal(mine.filter((c) => c.choices[0].finish_reason === 'length').length, 1);
      const offsets = mine.flatMap((c) => c.choices[0].logprobs.text_offset);
      assert.equal(offsets.length, 4);
      assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
    }
    assert.equal(s.events.at(-2).usage.completion_tokens, 8);
  });

  it('answers errors raised before the first token with a status, not a stream', async () => {
    h.engine.nextError = new PdsError('PDS_ERR_OVERLOADED', 'busy');
    const s = await postSse(h.base, '/v1/completions', { prompt: 'a', stream: true });
    assert.equal(s.status, 429);
    assert.equal(JSON.parse(s.raw).error.message, 'busy');
  });
});

describe('/v1/completions with EOS', () => {
  it('stops at EOS unless ignore_eos, and min_tokens holds it back', async () => {
    const h = await startHarness({ eosAfter: 3 });
    try {
      const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 10, return_token_ids: true });
      assert.equal(r.json.choices[0].text, 'The');
      assert.equal(r.json.choices[0].finish_reason, 'stop');
      assert.deepEqual(r.json.choices[0].token_ids.at(-1), FAKE_EOS);
      const ig = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 10, ignore_eos: true });
      assert.equal(ig.json.choices[0].finish_reason, 'length');
      assert.equal(ig.json.usage.completion_tokens, 10);
      await assertNoLeaks(h.engine);
    } finally {
      await h.close();
    }
  });
});

describe('engine failure mid-stream', () => {
  it('sends an error event then [DONE], frees blocks, and keeps serving', async () => {
    const h = await startHarness({ failAfter: 3 });
    try {
      const s = await postSse(h.base, '/v1/completions', { prompt: 'a', max_tokens: 10, stream: true });
      assert.equal(s.status, 200);
      assert.equal(s.events.at(-1), '[DONE]');
      const err = s.events.at(-2);
      assert.equal(err.error.code, 500);
      assert.match(err.error.message, /failed after 3 tokens/);
      assert.equal(s.events.slice(0, -2).map((e) => e.choices[0].text).join(''), 'The');
      const c = await postSse(h.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], stream: true });
      assert.equal(c.events.at(-2).error.code, 500);
      const nonStream = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 10 });
      assertOpenAiError(nonStream, 500, null, 'failed after 3 tokens');
      await assertNoLeaks(h.engine);
    } finally {
      await h.close();
    }
  });
});

describe('many concurrent streams', () => {
  it('all complete with their own text and nothing leaks', async () => {
    const h = await startHarness({ tokenDelayMs: 1, numBlocks: 256 });
    try {
      const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => postSse(h.base, '/v1/completions', {
        prompt: `p${i}`, max_tokens: 20, stream: true, stream_options: { include_usage: true },
      })));
      for (const s of rs) {
        assert.equal(s.status, 200);
        assert.equal(s.events.at(-2).usage.completion_tokens, 20);
        assert.equal(s.events.slice(0, -2).map((e) => e.choices[0].text).join(''), PHRASE.slice(0, 20));
      }
      await assertNoLeaks(h.engine);
    } finally {
      await h.close();
    }
  });
});
