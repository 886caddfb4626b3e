import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStub, sendJson, completion, deadUrl, sleep, timeoutAfter, type Stub } from '../../test/helpers/stub-upstream.js';
import { testProxy, postJson } from '../../test/helpers/proxy-harness.js';

const ok = (who: string) => startStub((r, res) => sendJson(res, 200, completion(who)));
const closeAll = (xs: Stub[]) => Promise.all(xs.map((s) => s.close()));

test('round robin over 2 prefillers and 2 decoders', async () => {
  const stubs = await Promise.all([ok('P0'), ok('P1'), ok('D0'), ok('D1')]);
  const [p0, p1, d0, d1] = stubs as [Stub, Stub, Stub, Stub];
  const proxy = await testProxy([p0.url, p1.url], [d0.url, d1.url]);
  try {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((await postJson(`${proxy.url}/v1/completions`, { prompt: `q${i}` })).json.choices[0].text);
    assert.deepEqual(seen, ['D0', 'D1', 'D0', 'D1', 'D0', 'D1']);
    assert.deepEqual(p0.requests.map((r) => r.body.prompt), ['q0', 'q2', 'q4']);
    assert.deepEqual(p1.requests.map((r) => r.body.prompt), ['q1', 'q3', 'q5']);
  } finally {
    await proxy.close();
    await closeAll(stubs);
  }
});

test('an unreachable prefiller is skipped and marked down; no fallback needed', async () => {
  const dead = await deadUrl();
  const [p1, d] = (await Promise.all([ok('P1'), ok('D')])) as [Stub, Stub];
  const proxy = await testProxy([dead, p1.url], [d.url]);
  try {
    for (let i = 0; i < 3; i++) assert.equal((await postJson(`${proxy.url}/v1/completions`, { prompt: `q${i}` })).status, 200);
    assert.equal(p1.requests.length, 3, 'every prefill went to the live prefiller');
    assert.equal(d.requests.length, 3);
    assert.equal(proxy.state.prefillers.all[0]!.healthy, false);
    const m = await proxy.state.metrics.registry.getSingleMetricAsString('pdserve_proxy_fallbacks_total');
    assert.doesNotMatch(m, /} [1-9]/, 'no fallback was needed');
    await proxy.checkHealth();
    assert.equal(proxy.state.prefillers.all[0]!.healthy, false, 'still down');
    assert.equal(proxy.state.prefillers.all[1]!.healthy, true);
  } finally {
    await proxy.close();
    await closeAll([p1, d]);
  }
});

test('no reachable prefiller: the decoder alone serves the request, counted as a fallback', async () => {
  const d = await ok('D');
  const proxy = await testProxy([await deadUrl(), await deadUrl()], [d.url]);
  try {
    const r = await postJson(`${proxy.url}/v1/completions`, { prompt: 'q', max_tokens: 7 });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].text, 'D');
    assert.deepEqual(d.requests[0]!.body, { prompt: 'q', max_tokens: 7 });
    const m = await proxy.state.metrics.registry.metrics();
    assert.match(m, /pdserve_proxy_fallbacks_total{reason="unreachable"} 1/);
    assert.match(m, /pdserve_proxy_requests_total{endpoint="\/v1\/completions",mode="decode_only"} 1/);
  } finally {
    await proxy.close();
    await d.close();
  }
});

test('prefill 5xx: not retried on another prefiller (it may be the request\'s fault); the decoder prefills', async () => {
  const bad = () => startStub((r, res) => sendJson(res, 500, { error: { message: 'boom' } }));
  const [p0, p1, p2, d] = (await Promise.all([bad(), bad(), bad(), ok('D')])) as [Stub, Stub, Stub, Stub];
  const proxy = await testProxy([p0.url, p1.url, p2.url], [d.url]);
  try {
    const r = await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r.status, 200);
    assert.equal(p0.requests.length + p1.requests.length + p2.requests.length, 1, 'one prefill attempt');
    assert.equal(d.requests.length, 1);
    assert.match(await proxy.state.metrics.registry.metrics(), /pdserve_proxy_fallbacks_total{reason="prefill_5xx"} 1/);
  } finally {
    await proxy.close();
    await closeAll([p0, p1, p2, d]);
  }
});

test('zero prefillers configured: no prefill leg, decoders round robin', async () => {
  const [d0, d1] = (await Promise.all([ok('D0'), ok('D1')])) as [Stub, Stub];
  const proxy = await testProxy([], [d0.url, d1.url]);
  try {
    const a = await postJson(`${proxy.url}/v1/completions`, { prompt: 'a', max_tokens: 5 });
    const b = await postJson(`${proxy.url}/v1/completions`, { prompt: 'b', max_tokens: 5 });
    assert.deepEqual([a.json.choices[0].text, b.json.choices[0].text], ['D0', 'D1']);
    assert.equal(d0.requests[0]!.body.max_tokens, 5);
    assert.doesNotMatch(await proxy.state.metrics.registry.metrics(), /pdserve_proxy_fallbacks_total{/);
  } finally {
    await proxy.close();
    await closeAll([d0, d1]);
  }
});

test('a dead decoder is skipped; no decoder reachable is a 503 JSON error', async () => {
  const d1 = await ok('D1');
  const proxy = await testProxy([], [await deadUrl(), d1.url]);
  try {
    for (let i = 0; i < 2; i++) assert.equal((await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' })).json.choices[0].text, 'D1');
    await d1.close();
    const r = await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.type, 'ServiceUnavailableError');
    assert.match(r.json.error.message, /no decode instance/);
  } finally {
    await proxy.close();
  }
});

test('leg timeouts answer 504 JSON and close the engine socket', async () => {
  const slow = await startStub(() => undefined);
  const d = await ok('D');
  const proxy = await testProxy([slow.url], [d.url], { prefillTimeoutMs: 150 });
  const proxy2 = await testProxy([], [slow.url], { decodeTimeoutMs: 150 });
  try {
    const r = await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r.status, 504);
    assert.equal(r.json.error.code, 504);
    assert.match(r.json.error.message, /prefill/);
    assert.equal(await slow.requests[0]!.closedEarly, true);
    assert.equal(d.requests.length, 0);
    const r2 = await postJson(`${proxy2.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r2.status, 504);
    assert.match(r2.json.error.message, /decode/);
    assert.equal(await Promise.race([slow.requests[1]!.closedEarly, timeoutAfter(3000)]), true);
  } finally {
    await proxy.close();
    await proxy2.close();
    await closeAll([slow, d]);
  }
});

test('with health checks on, a prefiller marked down is not tried: immediate decode-only fallback', async () => {
  const p = await ok('P');
  const d = await ok('D');
  const proxy = await testProxy([p.url], [d.url], { healthIntervalMs: 60_000 });
  try {
    p.healthy = false;
    await proxy.checkHealth();
    assert.equal(proxy.state.prefillers.all[0]!.healthy, false);
    const r = await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r.status, 200);
    assert.equal(p.requests.length, 0);
    assert.match(await proxy.state.metrics.registry.metrics(), /pdserve_proxy_fallbacks_total{reason="unreachable"} 1/);
    p.healthy = true;
    await proxy.checkHealth();
    await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    assert.equal(p.requests.length, 1, 'back in rotation after a passing check');
  } finally {
    await proxy.close();
    await closeAll([p, d]);
  }
});

test('conditional disaggregation: short prompts and full prefillers go straight to the decoder', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const p = await startStub(async (r, res) => {
    if (String(r.body.prompt).startsWith('hold')) await gate;
    sendJson(res, 200, completion('P'));
  });
  const d = await ok('D');
  const proxy = await testProxy([p.url], [d.url], { localPrefillBelow: 16, prefillMaxInflight: 1 });
  try {
    assert.equal((await postJson(`${proxy.url}/v1/completions`, { prompt: [1, 2, 3] })).status, 200);
    assert.equal(p.requests.length, 0, 'short prompt: no prefill leg');
    const long = Array.from({ length: 20 }, (_, i) => i);
    const held = postJson(`${proxy.url}/v1/completions`, { prompt: 'hold'.repeat(20) });
    while (p.requests.length === 0) await sleep(5);
    // the only prefiller is full: the next request is prefilled by the decoder
    assert.equal((await postJson(`${proxy.url}/v1/completions`, { prompt: long })).status, 200);
    assert.equal(p.requests.length, 1);
    release();
    assert.equal((await held).status, 200);
    assert.equal((await postJson(`${proxy.url}/v1/completions`, { prompt: long })).status, 200);
    assert.equal(p.requests.length, 2, 'free again');
    const m = await proxy.state.metrics.registry.metrics();
    assert.match(m, /pdserve_proxy_fallbacks_total{reason="short_prompt"} 1/);
    assert.match(m, /pdserve_proxy_fallbacks_total{reason="busy"} 1/);
  } finally {
    release();
    await proxy.close();
    await closeAll([p, d]);
  }
});
