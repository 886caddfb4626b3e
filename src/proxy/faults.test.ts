// Leg-failure semantics: a frozen prefiller is detected by heartbeat (not the leg's timeout), a reset
// before any answer is retried once elsewhere and only once, /health reports the kv-server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testProxy, postJson } from '../../test/helpers/proxy-harness.js';
import { startStub, sendJson, completion, deadUrl, type Stub } from '../../test/helpers/stub-upstream.js';

const ok = (who: string) => startStub((_r, res) => sendJson(res, 200, completion(who)));
const resetting = () => startStub((_r, res) => void res.socket?.destroy());
const closeAll = (s: Stub[]) => Promise.all(s.map((x) => x.close()));

test('a frozen prefiller (no answer, failing /health) is given up by heartbeat within seconds; the decoder prefills', async () => {
  const p = await startStub(() => undefined); // never answers the leg
  p.healthy = false;
  const d = await ok('D');
  const proxy = await testProxy([p.url], [d.url], { prefillHeartbeatMs: 200, prefillTimeoutMs: 120_000 });
  try {
    const t0 = Date.now();
    const r = await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].text, 'D');
    assert.ok(Date.now() - t0 < 30_000, 'not the 120 s leg timeout');
    assert.ok(p.healthChecks >= 2);
    assert.equal(await p.requests[0]!.closedEarly, true, 'the frozen leg was aborted');
    assert.match(await proxy.state.metrics.registry.metrics(), /pdserve_proxy_fallbacks_total{reason="prefill_frozen"} 1/);
  } finally {
    await proxy.close();
    await closeAll([p, d]);
  }
});

test('a decoder that resets before answering: retried once on the next; two resets: 502, no third engine', async () => {
  const [r0, d1] = await Promise.all([resetting(), ok('D1')]);
  const proxy = await testProxy([], [r0.url, d1.url]);
  try {
    const r = await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].text, 'D1');
    assert.match(await proxy.state.metrics.registry.metrics(), /pdserve_proxy_retries_total{role="decode"} 1/);
  } finally {
    await proxy.close();
    await closeAll([r0, d1]);
  }
  const [a, b, c] = await Promise.all([resetting(), resetting(), ok('C')]);
  const proxy2 = await testProxy([], [a.url, b.url, c.url]);
  try {
    const r = await postJson(`${proxy2.url}/v1/completions`, { prompt: 'q' });
    assert.equal(r.status, 502, r.text);
    assert.equal(a.requests.length + b.requests.length, 2);
    assert.equal(c.requests.length, 0, 'at most one retry per request');
  } finally {
    await proxy2.close();
    await closeAll([a, b, c]);
  }
});

test('/health: a dead kv-server makes the status "degraded" (200); a dead decoder set makes it 503', async () => {
  const d = await ok('D');
  const proxy = await testProxy([], [d.url], { kvServer: (await deadUrl()).replace('http://', '') });
  try {
    await proxy.checkHealth();
    const r = await fetch(`${proxy.url}/health`);
    const j = (await r.json()) as any;
    assert.equal(r.status, 200);
    assert.equal(j.status, 'degraded');
    assert.equal(j.kv_server.healthy, false);
    assert.match(j.kv_server.last_error, /ECONNREFUSED/);
  } finally {
    await proxy.close();
    await d.close();
  }
});
