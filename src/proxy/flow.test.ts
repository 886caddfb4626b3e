import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStub, sendJson, completion } from '../../test/helpers/stub-upstream.js';
import { testProxy, postJson } from '../../test/helpers/proxy-harness.js';

test('prefill leg gets the trimmed body, decode leg the original, both the same X-Request-Id', async () => {
  const p = await startStub((r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const body = {
      model: 'm',
      prompt: 'hello world',
      max_tokens: 50,
      max_completion_tokens: 40,
      min_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0,
    };
    // non-streaming answer from the stub is relayed even though the client asked for a stream
    const r = await postJson(`${proxy.url}/v1/completions`, body);
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].text, 'D');
    assert.equal(p.requests.length, 1);
    assert.equal(d.requests.length, 1);
    assert.deepEqual(p.requests[0]!.body, {
      model: 'm',
      prompt: 'hello world',
      max_tokens: 1,
      max_completion_tokens: 1,
      stream: false,
      temperature: 0,
      kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false },
      decode_limits: { max_tokens: 40, min_tokens: 3 }, // the prefiller validates as the decoder will
    });
    assert.equal(p.requests[0]!.path, '/v1/completions');
    assert.deepEqual(d.requests[0]!.body, body);
    assert.equal(d.requests[0]!.raw, JSON.stringify(body), 'decode gets the original bytes');
    const id = p.requests[0]!.headers['x-request-id'];
    assert.ok(typeof id === 'string' && id.length > 8);
    assert.equal(d.requests[0]!.headers['x-request-id'], id);
    assert.equal(r.headers.get('x-request-id'), id);
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('client X-Request-Id is used for both legs; chat path kept; max_completion_tokens only when present', async () => {
  const p = await startStub((r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub((r, res) => sendJson(res, 201, completion('D')));
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 9 };
    const r = await postJson(`${proxy.url}/v1/chat/completions`, body, { 'x-request-id': 'client-id-7' });
    assert.equal(r.status, 201, 'decoder status relayed');
    assert.equal(p.requests[0]!.path, '/v1/chat/completions');
    assert.equal(d.requests[0]!.path, '/v1/chat/completions');
    assert.equal(p.requests[0]!.headers['x-request-id'], 'client-id-7');
    assert.equal(d.requests[0]!.headers['x-request-id'], 'client-id-7');
    assert.equal('max_completion_tokens' in p.requests[0]!.body, false);
    assert.equal(p.requests[0]!.body.max_tokens, 1);
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test("the prefiller's kv_transfer_params go into the decode leg", async () => {
  const params = { do_remote_prefill: true, do_remote_decode: false, remote_engine_id: 'e1', remote_block_ids: [1, 2], remote_host: 'h', remote_port: 5 };
  const p = await startStub((r, res) => sendJson(res, 200, completion('P', { kv_transfer_params: params })));
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const body = { model: 'm', prompt: 'x', max_tokens: 4 };
    const r = await postJson(`${proxy.url}/v1/completions`, body);
    assert.equal(r.status, 200);
    assert.deepEqual(d.requests[0]!.body, { ...body, kv_transfer_params: params });
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('a 4xx from the prefiller is relayed as is and decode never runs', async () => {
  const err = { error: { message: 'prompt too long', type: 'BadRequestError', param: null, code: 400 } };
  const p = await startStub((r, res) => sendJson(res, 400, err));
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([p.url], [d.url]);
  try {
    const r = await postJson(`${proxy.url}/v1/completions`, { model: 'm', prompt: 'x' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, err);
    assert.equal(d.requests.length, 0);
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('a 4xx from the decoder is relayed with its status and body', async () => {
  const err = { error: { message: 'model nope not found', type: 'NotFoundError', param: 'model', code: 404 } };
  const d = await startStub((r, res) => sendJson(res, 404, err));
  const proxy = await testProxy([], [d.url]);
  try {
    const r = await postJson(`${proxy.url}/v1/completions`, { model: 'nope', prompt: 'x' });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, err);
  } finally {
    await proxy.close();
    await d.close();
  }
});

test('a body that is not a JSON object is a 400 JSON error and reaches no engine', async () => {
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([], [d.url]);
  try {
    for (const raw of ['{not json', '[1,2]', '']) {
      const res = await fetch(`${proxy.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
      assert.equal(res.status, 400, raw);
      const j = (await res.json()) as any;
      assert.equal(j.error.type, 'BadRequestError');
      assert.ok(j.error.message.length > 0);
    }
    // curl -d sends form-urlencoded; still parsed as JSON like the engines do
    const ok = await fetch(`${proxy.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '{"prompt":"a"}' });
    assert.equal(ok.status, 200);
    assert.equal(d.requests.length, 1);
    const nf = await fetch(`${proxy.url}/v1/nothing`);
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as any).error.code, 404);
  } finally {
    await proxy.close();
    await d.close();
  }
});
