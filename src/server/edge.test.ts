// The hardened edge of the API server: API keys, internal signatures, peer-only kv_transfer_params,
// deep JSON, cheap request limits, decode_limits, and the tokenizer pool behind it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AUTH_REPLY_HEADER, checkReplyProof, signRequest } from '../security/request-signing.js';
import { createApiServer, type ApiServer } from './api-server.js';
import { registerDebugRoutes } from './debug-routes.js';
import { FakeEngine } from './testing/fake-engine.js';
import { registerConnectorRoutes } from './kv-routes.js';
import { kvReleaseRoute } from '../kv/connector/release-route.js';
import { assertOpenAiError, peerHeaders, postJson, startHarness, TEST_INTERNAL_KEY, type Harness } from './testing/harness.js';

describe('edge: API keys and internal endpoints', () => {
  let h: { base: string };
  let server: ApiServer;
  const released: string[] = [];
  before(async () => {
    const engine = new FakeEngine({});
    server = createApiServer(engine, { maxModelLen: 64, apiKeys: ['sk-good'], internalKey: TEST_INTERNAL_KEY });
    registerDebugRoutes(server.app, engine);
    registerConnectorRoutes(server.app, [kvReleaseRoute({ releaseHeld: (id) => (released.push(id), true) })]);
    h = { base: `http://127.0.0.1:${await server.listen(0)}` };
  });
  after(async () => { await server.close(); });

  it('/v1/* needs the Bearer key: missing or wrong -> 401 OpenAI-style; right -> 200', async () => {
    const body = { prompt: 'a', max_tokens: 1 };
    assertOpenAiError(await postJson(h.base, '/v1/completions', body), 401);
    assertOpenAiError(await postJson(h.base, '/v1/completions', body, { authorization: 'Bearer sk-bad' }), 401);
    assertOpenAiError(await postJson(h.base, '/tokenize', { prompt: 'a' }), 401);
    assert.equal((await fetch(`${h.base}/v1/models`)).status, 401);
    assert.equal((await postJson(h.base, '/v1/completions', body, { authorization: 'Bearer sk-good' })).status, 200);
    const r = await fetch(`${h.base}/v1/models`, { headers: { authorization: 'Bearer sk-good' } });
    assert.equal(r.status, 200);
  });

  it('/health, /metrics and /version stay open', async () => {
    for (const p of ['/health', '/metrics', '/version']) assert.equal((await fetch(h.base + p)).status, 200, p);
  });

  it('a valid internal signature stands in for the key and gets a reply proof', async () => {
    const body = { prompt: 'a', max_tokens: 1 };
    const sig = peerHeaders('/v1/completions', body);
    const r = await postJson(h.base, '/v1/completions', body, sig);
    assert.equal(r.status, 200);
    assert.ok(checkReplyProof(TEST_INTERNAL_KEY, sig, r.headers.get(AUTH_REPLY_HEADER)));
    // a replay of the same signature, and one signed over another body, are refused
    assertOpenAiError(await postJson(h.base, '/v1/completions', body, sig), 401);
    assertOpenAiError(await postJson(h.base, '/v1/completions', { ...body, max_tokens: 2 }, peerHeaders('/v1/completions', body)), 401);
    assertOpenAiError(await postJson(h.base, '/v1/completions', body, peerHeaders('/v1/completions', body, Buffer.alloc(32, 1))), 401);
  });

  it('internal endpoints refuse the users key (403) and no credentials (401); a signature opens them', async () => {
    const body = { request_id: 'r1' };
    assertOpenAiError(await postJson(h.base, '/v1/kv/release', body, { authorization: 'Bearer sk-good' }), 403);
    assertOpenAiError(await postJson(h.base, '/v1/kv/release', body), 401);
    assert.equal((await fetch(`${h.base}/debug/integrity`, { headers: { authorization: 'Bearer sk-good' } })).status, 403);
    assert.equal(released.length, 0);
    const sig = peerHeaders('/v1/kv/release', body);
    const r = await postJson(h.base, '/v1/kv/release', body, sig);
    assert.equal(r.status, 200);
    assert.ok(checkReplyProof(TEST_INTERNAL_KEY, sig, r.headers.get(AUTH_REPLY_HEADER)));
    assert.deepEqual(released, ['r1']);
    const d = await fetch(`${h.base}/debug/integrity`, { headers: signRequest(TEST_INTERNAL_KEY, 'GET', '/debug/integrity', null) });
    assert.equal(d.status, 200);
  });
});

describe('edge: peer-only fields and bounded input', () => {
  let h: Harness;
  before(async () => { h = await startHarness({}, { maxModelLen: 64, limits: { maxPromptsPerRequest: 8, maxStopStrings: 4, maxChatMessages: 5 } }); });
  after(async () => { await h.close(); });

  it('ignores a client kv_transfer_params (unsigned), honours a signed one', async () => {
    const body = { prompt: 'abc', max_tokens: 1, kv_transfer_params: { do_remote_prefill: true, remote_host: '127.0.0.1', remote_port: 9 } };
    assert.equal((await postJson(h.base, '/v1/completions', body)).status, 200);
    assert.equal(h.engine.requests.at(-1)!.kvTransferParams, undefined);
    assert.equal((await postJson(h.base, '/v1/completions', body, peerHeaders('/v1/completions', body))).status, 200);
    assert.deepEqual(h.engine.requests.at(-1)!.kvTransferParams, body.kv_transfer_params);
  });

  it('kv_transfer_params of the wrong shape are a 400 naming the field, signed or not', async () => {
    const n = h.engine.requests.length;
    const body = { prompt: 'abc', max_tokens: 1, kv_transfer_params: { do_remote_prefill: true, remote_port: 'nine' } };
    assertOpenAiError(await postJson(h.base, '/v1/completions', body, peerHeaders('/v1/completions', body)), 400, 'kv_transfer_params.remote_port');
    assertOpenAiError(await postJson(h.base, '/v1/completions', body), 400, 'kv_transfer_params.remote_port');
    assert.equal(h.engine.requests.length, n, 'nothing reached the engine');
  });

  it('deep JSON is a 400, not a crash', async () => {
    const deep = '{"prompt":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    assertOpenAiError(await postJson(h.base, '/v1/completions', deep), 400);
    assert.equal((await postJson(h.base, '/v1/completions', { prompt: 'a', max_tokens: 1 })).status, 200);
  });

  it('refuses oversized prompts, prompt lists, stop lists and message lists before tokenizing', async () => {
    const n = h.engine.requests.length;
    const r = await postJson(h.base, '/v1/completions', { prompt: 'x'.repeat(64 * 32 + 1), max_tokens: 1 });
    assertOpenAiError(r, 400, 'prompt');
    assert.match(r.json.error.message, /refused before tokenization/);
    assertOpenAiError(await postJson(h.base, '/v1/completions', { prompt: Array(9).fill('a'), max_tokens: 1 }), 400, 'prompt');
    assertOpenAiError(await postJson(h.base, '/v1/completions', { prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop');
    const msgs = Array.from({ length: 6 }, () => ({ role: 'user', content: 'a' }));
    assertOpenAiError(await postJson(h.base, '/v1/chat/completions', { messages: msgs }), 400, 'messages');
    assert.equal(h.engine.requests.length, n, 'no engine request was made');
    assert.equal((await postJson(h.base, '/v1/completions', { prompt: Array(8).fill('a'), max_tokens: 1 })).status, 200);
  });

  it('decode_limits: a prefill leg is refused when the decode leg would be', async () => {
    const n = h.engine.requests.length;
    const r = await postJson(h.base, '/v1/completions', { prompt: 'abc', max_tokens: 1, decode_limits: { max_tokens: 1e9 } });
    assertOpenAiError(r, 400, 'max_tokens');
    const r2 = await postJson(h.base, '/v1/completions', { prompt: 'abc', max_tokens: 1, decode_limits: { max_tokens: 40, max_model_len: 32 } });
    assertOpenAiError(r2, 400, 'max_tokens');
    assert.equal(h.engine.requests.length, n);
    assert.equal((await postJson(h.base, '/v1/completions', { prompt: 'abc', max_tokens: 1, decode_limits: { max_tokens: 20, min_tokens: 2 } })).status, 200);
  });
});
