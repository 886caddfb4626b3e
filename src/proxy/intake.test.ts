// The proxy's intake: client keys, no Authorization forwarded, signed upstream legs, stripped peer fields,
// deep JSON as a 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStub, sendJson, completion } from '../../test/helpers/stub-upstream.js';
import { testProxy, postJson } from '../../test/helpers/proxy-harness.js';
import { AUTH_HEADER, NonceCache, verifyRequest } from '../security/request-signing.js';

const KEY = Buffer.alloc(32, 0x33);

test('proxy: client key checked, own credentials upstream, client kv_transfer_params stripped', async () => {
  const p = await startStub((_r, res) => sendJson(res, 200, completion('P', { kv_transfer_params: { from: 'prefiller' } })));
  const d = await startStub((_r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([p.url], [d.url], { apiKeys: ['sk-client'], internalKey: KEY, upstreamApiKey: 'sk-up' });
  try {
    const body = { prompt: 'hi', max_tokens: 5, kv_transfer_params: { do_remote_prefill: true, remote_host: '127.0.0.1', remote_port: 1 }, decode_limits: { max_tokens: 1 } };
    assert.equal((await postJson(`${proxy.url}/v1/completions`, body)).status, 401);
    assert.equal((await postJson(`${proxy.url}/v1/completions`, body, { authorization: 'Bearer nope' })).status, 401);
    assert.equal(p.requests.length + d.requests.length, 0, 'refused before any leg');
    assert.equal((await fetch(`${proxy.url}/health`)).status, 200, '/health stays open');

    const r = await postJson(`${proxy.url}/v1/completions`, body, { authorization: 'Bearer sk-client' });
    assert.equal(r.status, 200, r.text);
    const pre = p.requests[0]!;
    const dec = d.requests[0]!;
    assert.deepEqual(pre.body.kv_transfer_params, { do_remote_decode: true, do_remote_prefill: false });
    assert.deepEqual(pre.body.decode_limits, { max_tokens: 5 });
    assert.deepEqual(dec.body.kv_transfer_params, { from: 'prefiller' }, 'decode leg: only what the prefiller returned');
    assert.equal(dec.body.decode_limits, undefined);
    for (const leg of [pre, dec]) {
      assert.equal(leg.headers.authorization, 'Bearer sk-up', 'the proxy\'s key, never the client\'s');
      const v = verifyRequest(KEY, 'POST', '/v1/completions', leg.headers[AUTH_HEADER] as string, leg.raw, new NonceCache());
      assert.ok(v.ok, 'each leg is signed over its own body');
    }
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('proxy: without a prefiller answer, a client kv_transfer_params never reaches the decoder; deep JSON is a 400', async () => {
  const p = await startStub((_r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub((_r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const body = { prompt: 'hi', kv_transfer_params: { do_remote_prefill: true, remote_host: '127.0.0.1', remote_port: 1 } };
    assert.equal((await postJson(`${proxy.url}/v1/completions`, body, { authorization: 'Bearer x' })).status, 200);
    assert.equal(d.requests[0]!.body.kv_transfer_params, undefined);
    assert.equal(d.requests[0]!.headers.authorization, undefined, 'the client\'s Authorization is not forwarded');
    const deep = '{"prompt":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}';
    const r = await fetch(`${proxy.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as any).error.message, /deeper than/);
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});
