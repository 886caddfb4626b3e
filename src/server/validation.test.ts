// Bad input at the HTTP edge: each case gets its status and an OpenAI error body naming the field,
// nothing reaches (or stays in) the engine, and the server keeps answering.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertNoLeaks, assertOpenAiError, postJson, startHarness, type Harness } from './testing/harness.js';

interface Case {
  name: string;
  path?: string;
  body: unknown; // a string is sent raw
  status: number;
  param?: string | null;
  message?: string | RegExp;
}

const msgs = [{ role: 'user', content: 'hi' }];
const cases: Case[] = [
  { name: 'malformed JSON', body: '{"prompt": "a",', status: 400, message: /JSON/ },
  { name: 'JSON array body', body: '[1,2]', status: 400, message: 'JSON object' },
  { name: 'missing prompt', body: { max_tokens: 3 }, status: 400, param: 'prompt' },
  { name: 'prompt of wrong type', body: { prompt: 5 }, status: 400, param: 'prompt' },
  { name: 'max_tokens not an integer', body: { prompt: 'a', max_tokens: 1.5 }, status: 400, param: 'max_tokens' },
  { name: 'max_tokens as a string', body: { prompt: 'a', max_tokens: '3' }, status: 400, param: 'max_tokens' },
  { name: 'stop of wrong type', body: { prompt: 'a', stop: 3 }, status: 400, param: 'stop' },
  { name: 'unknown model', body: { model: 'gpt-9', prompt: 'a' }, status: 404, param: 'model', message: 'The model `gpt-9` does not exist.' },
  { name: 'empty string prompt without BOS', body: { prompt: '', add_special_tokens: false }, status: 400, param: 'prompt', message: 'cannot be empty' },
  { name: 'empty token prompt', body: { prompt: [] }, status: 400, param: 'prompt', message: 'cannot be empty' },
  { name: 'empty prompt in a list', body: { prompt: [[1], []] }, status: 400, param: 'prompt', message: 'cannot be empty' },
  { name: 'token id out of vocab', body: { prompt: [1, 300] }, status: 400, param: 'prompt', message: 'Token id 300 is out of vocabulary' },
  { name: 'negative token id', body: { prompt: [-1] }, status: 400, param: 'prompt', message: 'out of vocabulary' },
  {
    name: 'prompt + max_tokens over the context', body: { prompt: 'x'.repeat(60), max_tokens: 10 }, status: 400, param: 'max_tokens',
    message: "This model's maximum context length is 64 tokens. However, you requested 71 tokens (61 in the messages, 10 in the completion). Please reduce the length of the messages or completion.",
  },
  { name: 'prompt alone over the context', body: { prompt: 'x'.repeat(70) }, status: 400, param: 'prompt', message: 'your request has 71 input tokens' },
  { name: 'negative temperature', body: { prompt: 'a', temperature: -0.1 }, status: 400, param: 'temperature', message: 'temperature must be non-negative' },
  { name: 'top_p zero', body: { prompt: 'a', top_p: 0 }, status: 400, param: 'top_p', message: 'top_p must be in (0, 1]' },
  { name: 'top_p above one', body: { prompt: 'a', top_p: 1.5 }, status: 400, param: 'top_p' },
  { name: 'top_k below -1', body: { prompt: 'a', top_k: -2 }, status: 400, param: 'top_k' },
  { name: 'min_p above one', body: { prompt: 'a', min_p: 2 }, status: 400, param: 'min_p' },
  { name: 'repetition_penalty zero', body: { prompt: 'a', repetition_penalty: 0 }, status: 400, param: 'repetition_penalty' },
  { name: 'presence_penalty out of range', body: { prompt: 'a', presence_penalty: 2.5 }, status: 400, param: 'presence_penalty' },
  { name: 'frequency_penalty out of range', body: { prompt: 'a', frequency_penalty: -3 }, status: 400, param: 'frequency_penalty' },
  { name: 'max_tokens zero', body: { prompt: 'a', max_tokens: 0 }, status: 400, param: 'max_tokens', message: 'max_tokens must be at least 1' },
  { name: 'min_tokens above max_tokens', body: { prompt: 'a', max_tokens: 2, min_tokens: 3 }, status: 400, param: 'min_tokens' },
  { name: 'negative min_tokens', body: { prompt: 'a', min_tokens: -1 }, status: 400, param: 'min_tokens' },
  { name: 'logprobs too large', body: { prompt: 'a', logprobs: 21 }, status: 400, param: 'logprobs', message: 'greater than max allowed: 20' },
  { name: 'negative logprobs', body: { prompt: 'a', logprobs: -1 }, status: 400, param: 'logprobs' },
  { name: 'n > 1', body: { prompt: 'a', n: 2 }, status: 400, param: 'n', message: 'n>1 is not supported' },
  { name: 'empty stop string', body: { prompt: 'a', stop: [''] }, status: 400, param: 'stop' },
  { name: 'stream_options without stream', body: { prompt: 'a', stream_options: { include_usage: true } }, status: 400, param: 'stream_options' },
  { name: 'logit_bias (not implemented)', body: { prompt: 'a', logit_bias: { '5': 10 } }, status: 400, param: 'logit_bias' },
  { name: 'response_format json (not implemented)', body: { prompt: 'a', response_format: { type: 'json_object' } }, status: 400, param: 'response_format' },
  { name: 'guided_json (not implemented)', body: { prompt: 'a', guided_json: { type: 'object' } }, status: 400, param: 'guided_json' },
  { name: 'prompt_logprobs (not implemented)', body: { prompt: 'a', prompt_logprobs: 1 }, status: 400, param: 'prompt_logprobs' },
  { name: 'echo with logprobs', body: { prompt: 'a', echo: true, logprobs: 1 }, status: 400, param: 'echo' },
  { name: 'chat: empty messages', path: '/v1/chat/completions', body: { messages: [] }, status: 400, param: 'messages' },
  { name: 'chat: message without role', path: '/v1/chat/completions', body: { messages: [{ content: 'x' }] }, status: 400, param: 'messages.0.role' },
  { name: 'chat: unknown model', path: '/v1/chat/completions', body: { model: 'nope', messages: msgs }, status: 404, param: 'model' },
  { name: 'chat: continue_final_message with add_generation_prompt', path: '/v1/chat/completions', body: { messages: msgs, continue_final_message: true, add_generation_prompt: true }, status: 400, param: 'continue_final_message' },
  { name: 'chat: logprobs not a bool', path: '/v1/chat/completions', body: { messages: msgs, logprobs: 3 }, status: 400, param: 'logprobs' },
  { name: 'chat: top_logprobs too large', path: '/v1/chat/completions', body: { messages: msgs, logprobs: true, top_logprobs: 50 }, status: 400, param: 'top_logprobs' },
  {
    name: 'chat: max_completion_tokens over the context', path: '/v1/chat/completions',
    body: { messages: msgs, max_completion_tokens: 60 }, status: 400, param: 'max_completion_tokens', message: '(24 in the messages, 60 in the completion)',
  },
  { name: 'chat: prompt over the context', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'y'.repeat(64) }] }, status: 400, param: 'messages' },
  { name: 'chat: temperature NaN-like string', path: '/v1/chat/completions', body: { messages: msgs, temperature: 'NaN' }, status: 400, param: 'temperature' },
  { name: 'tokenize: prompt of wrong type', path: '/tokenize', body: { prompt: 1 }, status: 400, param: 'prompt' },
  { name: 'detokenize: out of vocab', path: '/detokenize', body: { tokens: [1, 999] }, status: 400, param: 'tokens', message: 'Token id 999' },
  { name: 'detokenize: tokens missing', path: '/detokenize', body: {}, status: 400, param: 'tokens' },
];

describe('request validation', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ maxModelLen: 64 }); });
  after(async () => { await h.close(); });

  for (const c of cases) {
    it(`${c.name} -> ${c.status}`, async () => {
      const before = h.engine.requests.length;
      const r = await postJson(h.base, c.path ?? '/v1/completions', c.body);
      assertOpenAiError(r, c.status, c.param, c.message);
      assert.equal(h.engine.requests.length, before, 'a rejected request reached the engine');
      await assertNoLeaks(h.engine);
    });
  }

  it('unknown routes answer 404 JSON', async () => {
    const r = await postJson(h.base, '/v1/nope', {});
    assertOpenAiError(r, 404);
    const g = await fetch(`${h.base}/v2/models`);
    assert.equal(g.status, 404);
    assert.equal((await g.json()).error.code, 404);
  });

  it('reads a body sent without a JSON content type', async () => {
    const res = await fetch(`${h.base}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ prompt: 'a', max_tokens: 2 }),
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).usage.completion_tokens, 2);
  });

  it('still serves normally after every bad request', async () => {
    const r = await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 3 });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].text, 'The');
    await assertNoLeaks(h.engine);
  });
});
