// KV load timing from decoders: the router (holding the internal secret) tags each decode leg with a
// timing id, relays the decoder's bytes unchanged, then polls the decoder's signed /v1/kv/timing and
// fills the record; the engine-side store is bounded and read-once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startStub, sendJson, completion, type Stub } from '../../test/helpers/stub-upstream.js';
import { testRouter, backend } from '../../test/helpers/router-harness.js';
import { AUTH_HEADER, NonceCache, verifyRequest } from '../security/request-signing.js';
import { KV_TIMING_HEADER } from '../gateway/hooks.js';
import { KvTimingStore } from '../server/kv-timing.js';

const MODEL = 'm';
const SSE = ['data: {"id":"cmpl-1","choices":[{"text":"a"}]}\n\n', 'data: {"id":"cmpl-1","choices":[{"text":"b"}]}\n\n', 'data: [DONE]\n\n'];
const JSON_BODY = '{"id":"cmpl-2","object":"text_completion","choices":[{"index":0,"text":"ab","finish_reason":"length"}],"usage":{"prompt_tokens":3}}';

test('router: decoder bytes relayed unchanged; the KV timing comes by the signed poll, not the response', async () => {
  const key = randomBytes(32);
  const nonces = new NonceCache();
  const polls: string[][] = [];
  let unsignedPolls = 0;
  const p0: Stub = await startStub((req, res) => sendJson(res, 200, completion('p0', { kv_transfer_params: { from: 'p0' } })));
  const d0: Stub = await startStub(async (req, res) => {
    if (req.path === '/v1/kv/timing') {
      const ok = verifyRequest(key, req.method, req.path, String(req.headers[AUTH_HEADER] ?? ''), req.raw, nonces).ok;
      if (!ok) return void (unsignedPolls++, sendJson(res, 401, {}));
      polls.push(req.body.ids);
      const timings = Object.fromEntries((req.body.ids as string[]).map((id) => [id, { lookup_start_ms: 1, load_start_ms: 2, load_end_ms: 5.5, load_ms: 3.5, tokens: 48, bytes: 4096 }]));
      return sendJson(res, 200, { timings });
    }
    if (req.body?.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const c of SSE) res.write(c);
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON_BODY);
  });
  const r = await testRouter([backend(p0.url, 'pre', MODEL), backend(d0.url, 'dec', MODEL)],
    { routingLogic: 'disaggregated_prefill', prefillLabels: ['pre'], decodeLabels: ['dec'] }, { internalKey: key });
  try {
    const post = (stream: boolean, id: string) => fetch(`${r.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id, [KV_TIMING_HEADER]: 'client-forged' },
      body: JSON.stringify({ model: MODEL, prompt: 'hello there', max_tokens: 2, stream }),
    });
    const a = await post(true, 's-1');
    assert.equal(a.headers.get(KV_TIMING_HEADER), null);
    assert.equal(await a.text(), SSE.join(''), 'SSE bytes as the decoder sent them');
    const b = await post(false, 'j-1');
    assert.equal(b.headers.get(KV_TIMING_HEADER), null);
    assert.equal(await b.text(), JSON_BODY, 'JSON bytes as the decoder sent them');
    const legs = d0.requests.filter((q) => q.path === '/v1/completions');
    assert.equal(legs.length, 2);
    for (const q of legs) {
      assert.match(String(q.headers[KV_TIMING_HEADER]), /^[0-9a-f-]{36}$/, 'the router\'s own id, not the client\'s');
      assert.ok(q.headers[AUTH_HEADER], 'signed leg');
    }
    type Rec = { id: string; kv: { load_ms: number; tokens: number } | null; t: Record<string, number | null> };
    let recent: Rec[] = [];
    for (let i = 0; i < 40 && !(recent.length === 2 && recent.every((x) => x.kv)); i++) {
      await new Promise((res) => setTimeout(res, 50));
      recent = ((await (await fetch(`${r.url}/dashboard/data`)).json()) as { recent: Rec[] }).recent;
    }
    assert.equal(unsignedPolls, 0);
    assert.deepEqual(polls.flat().sort(), legs.map((q) => String(q.headers[KV_TIMING_HEADER])).sort(), 'polled by the legs\' ids');
    for (const x of recent) {
      assert.deepEqual(x.kv, { load_ms: 3.5, tokens: 48, bytes: 4096 });
      assert.equal(Math.round((x.t.kv_end! - x.t.kv_start!) * 10) / 10, 3.5);
      assert.ok(x.t.kv_start! > x.t.decode_start!);
    }
  } finally {
    await r.close();
    await Promise.all([p0.close(), d0.close()]);
  }
});

test('KvTimingStore: bounded, oldest dropped, TTL, read once, a prompt list merged', () => {
  const s = new KvTimingStore(3, 1000);
  const k = (a: number, b: number, tokens: number) => ({ lookupStartS: 0, loadStartS: a, loadEndS: b, loadS: b - a, tokens, bytes: tokens * 2 });
  for (const id of ['a', 'b', 'c', 'd']) s.put(id, k(0.001, 0.002, 1), 0);
  assert.equal(s.size, 3);
  assert.deepEqual(Object.keys(s.take(['a', 'b'], 0)), ['b'], 'a dropped (oldest)');
  s.put('c', k(0.0005, 0.004, 2), 0);
  const c = s.take(['c'], 0).c!;
  assert.deepEqual([c.load_start_ms, c.load_end_ms, c.load_ms, c.tokens, c.bytes], [0.5, 4, 3.5, 3, 6]);
  assert.deepEqual(s.take(['c'], 0), {}, 'read once');
  assert.deepEqual(s.take(['d'], 5000), {}, 'expired');
});
