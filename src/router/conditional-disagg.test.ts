// Conditional disaggregation's rules (decideDisagg) and its wiring over scripted engines: local
// decisions skip the prefill leg and pin the decoder that holds the prefix; every decision counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideDisagg } from './conditional-disagg.js';
import { startStub, sendJson, completion, type Stub } from '../../test/helpers/stub-upstream.js';
import { postJson } from '../../test/helpers/proxy-harness.js';
import { testRouter, backend } from '../../test/helpers/router-harness.js';

const rules = { localPrefillMaxTokens: 32, prefillBusyLoad: 4, decodeBusyLoad: 8 };
const x = { promptTokens: 100, decoderHitTokens: 0, decoderLoad: 0, prefillerLoads: [0, 1] };

test('decideDisagg: short after the prefix hit, prefill pool busy, decode-busy veto, thresholds off', () => {
  assert.equal(decideDisagg(rules, x), 'remote');
  assert.equal(decideDisagg(rules, { ...x, promptTokens: 32 }), 'local_short');
  assert.equal(decideDisagg(rules, { ...x, promptTokens: 33 }), 'remote');
  assert.equal(decideDisagg(rules, { ...x, decoderHitTokens: 80 }), 'local_prefix_hit');
  assert.equal(decideDisagg(rules, { ...x, decoderHitTokens: 64 }), 'remote', '36 tokens left');
  assert.equal(decideDisagg(rules, { ...x, prefillerLoads: [4, 9] }), 'local_prefill_busy');
  assert.equal(decideDisagg(rules, { ...x, prefillerLoads: [4, 3] }), 'remote', 'one prefiller has room');
  assert.equal(decideDisagg(rules, { ...x, prefillerLoads: [] }), 'remote', 'no usable prefiller: the gateway falls back itself');
  assert.equal(decideDisagg(rules, { ...x, promptTokens: 5, decoderLoad: 8 }), 'remote_decode_busy');
  assert.equal(decideDisagg(rules, { ...x, prefillerLoads: [5, 5], decoderLoad: 9 }), 'remote_decode_busy');
  const off = { localPrefillMaxTokens: 0, prefillBusyLoad: 0, decodeBusyLoad: 0 };
  assert.equal(decideDisagg(off, { ...x, promptTokens: 1, prefillerLoads: [99] }), 'remote');
});

test('router: local decisions skip the prefill leg on the decoder holding the prefix; decisions in /metrics', async () => {
  const engine = (name: string) => startStub((req, res) => sendJson(res, 200, completion(name, req.body?.max_tokens === 1 ? { kv_transfer_params: { from: name } } : {})));
  const stubs = await Promise.all(['p0', 'd0', 'd1'].map(engine));
  const [p0, d0, d1] = stubs as [Stub, Stub, Stub];
  const r = await testRouter([backend(p0.url, 'P'), backend(d0.url, 'D'), backend(d1.url, 'D')], {
    routingLogic: 'disaggregated_prefill', prefillLabels: ['P'], decodeLabels: ['D'], decodePolicy: 'prefixaware', localPrefillMaxTokens: 8,
  });
  try {
    const long = Array.from({ length: 64 }, (_, i) => i + 1);
    const gen = (s: Stub) => s.requests.filter((q) => q.path === '/v1/completions');
    assert.equal((await postJson(`${r.url}/v1/completions`, { prompt: [1, 2, 3], max_tokens: 2 })).status, 200);
    assert.equal(gen(p0).length, 0, 'short: no prefill leg');
    assert.equal((await postJson(`${r.url}/v1/completions`, { prompt: long, max_tokens: 2 })).status, 200);
    assert.equal(gen(p0).length, 1, 'long: prefilled remotely');
    const holder = gen(d0).some((q) => q.body.prompt?.length === 64) ? d0 : d1;
    const before = gen(holder).length;
    for (let i = 0; i < 3; i++) assert.equal((await postJson(`${r.url}/v1/completions`, { prompt: [...long, 99], max_tokens: 2 })).status, 200);
    assert.equal(gen(p0).length, 1, 'a full decoder prefix hit: no prefill leg');
    assert.equal(gen(holder).length, before + 3, 'pinned to the decoder that holds the prefix');
    assert.ok(gen(holder).slice(-3).every((q) => q.body.kv_transfer_params === undefined));
    const m = await (await fetch(`${r.url}/metrics`)).text();
    for (const [d, n] of [['remote', 1], ['local_short', 1], ['local_prefix_hit', 3], ['local_prefill_busy', 0], ['remote_decode_busy', 0]] as const) {
      assert.match(m, new RegExp(`^pdserve:router_disagg_decisions_total\\{decision="${d}"\\} ${n}$`, 'm'), d);
    }
  } finally {
    await r.close();
    await Promise.all(stubs.map((s) => s.close()));
  }
});

test('router: every prefiller busy -> the decoder prefills (counted), the held requests finish disaggregated', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const p0 = await startStub(async (_req, res) => {
    await gate;
    sendJson(res, 200, completion('p0', { kv_transfer_params: { from: 'p0' } }));
  });
  const d0 = await startStub((req, res) => sendJson(res, 200, completion('d0')));
  const r = await testRouter([backend(p0.url, 'P'), backend(d0.url, 'D')], {
    routingLogic: 'disaggregated_prefill', prefillLabels: ['P'], decodeLabels: ['D'], prefillBusyLoad: 2,
  });
  try {
    const held = [0, 1].map(() => postJson(`${r.url}/v1/completions`, { prompt: 'a long enough prompt', max_tokens: 2 }));
    const legs = () => p0.requests.filter((q) => q.path === '/v1/completions').length;
    for (let i = 0; i < 100 && legs() < 2; i++) await new Promise((x) => setTimeout(x, 10));
    assert.equal(legs(), 2);
    const res = await postJson(`${r.url}/v1/completions`, { prompt: 'while the prefiller is full', max_tokens: 2 });
    assert.equal(res.status, 200);
    assert.equal(legs(), 2, 'not sent to the busy prefiller');
    release();
    for (const h of held) assert.equal((await h).status, 200);
    assert.equal(d0.requests.filter((q) => q.path === '/v1/completions').at(-1)?.body.kv_transfer_params?.from, 'p0');
    const m = await (await fetch(`${r.url}/metrics`)).text();
    assert.match(m, /^pdserve:router_disagg_decisions_total\{decision="local_prefill_busy"\} 1$/m);
    assert.match(m, /^pdserve:router_disagg_decisions_total\{decision="remote"\} 2$/m);
  } finally {
    release();
    await r.close();
    await Promise.all([p0, d0].map((s) => s.close()));
  }
});

test('router with conditional disaggregation: the decode policy is asked once per request (round robin alternates), a burst spreads', async () => {
  const engine = (name: string, delayMs: number) => startStub(async (req, res) => {
    if (req.path === '/v1/completions' && delayMs) await new Promise((r) => setTimeout(r, delayMs));
    sendJson(res, 200, completion(name, req.body?.max_tokens === 1 ? { kv_transfer_params: { from: name } } : {}));
  });
  const stubs = await Promise.all([engine('p0', 30), engine('d0', 0), engine('d1', 0)]);
  const [p0, d0, d1] = stubs as [Stub, Stub, Stub];
  const gen = (s: Stub) => s.requests.filter((q) => q.path === '/v1/completions').length;
  for (const decodePolicy of ['roundrobin', 'least-load']) {
    const r = await testRouter([backend(p0.url, 'P'), backend(d0.url, 'D'), backend(d1.url, 'D')], {
      routingLogic: 'disaggregated_prefill', prefillLabels: ['P'], decodeLabels: ['D'], decodePolicy, prefillBusyLoad: 1000,
    });
    try {
      const [a0, b0] = [gen(d0), gen(d1)];
      if (decodePolicy === 'roundrobin') {
        for (let i = 0; i < 6; i++) assert.equal((await postJson(`${r.url}/v1/completions`, { prompt: 'x', max_tokens: 2 })).status, 200);
      } else {
        const res = await Promise.all(Array.from({ length: 10 }, () => postJson(`${r.url}/v1/completions`, { prompt: 'x', max_tokens: 2 })));
        for (const x of res) assert.equal(x.status, 200);
      }
      const [a, b] = [gen(d0) - a0, gen(d1) - b0];
      if (decodePolicy === 'roundrobin') assert.deepEqual([a, b], [3, 3], 'round robin alternates');
      else assert.deepEqual([a, b], [5, 5], 'requests still prefilling count in their decoder\'s load');
      assert.ok(r.state.decoders.all.every((u) => u.reserved === 0), 'every reservation released');
    } finally {
      await r.close();
    }
  }
  await Promise.all(stubs.map((s) => s.close()));
});
