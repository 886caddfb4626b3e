import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStub, sendJson, completion, sleep, type Stub } from '../../test/helpers/stub-upstream.js';
import { testProxy, postJson } from '../../test/helpers/proxy-harness.js';

test('/healthcheck and /health follow the background health checks', async () => {
  const p = await startStub((r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([p.url], [d.url]);
  try {
    let hc = (await (await fetch(`${proxy.url}/healthcheck`)).json()) as any;
    assert.equal(hc.status, 'ok');
    assert.equal(hc.prefill_instances, 1);
    assert.equal(hc.decode_instances, 1);
    d.healthy = false;
    await proxy.checkHealth();
    assert.ok(d.healthChecks >= 1);
    let h = await fetch(`${proxy.url}/health`);
    assert.equal(h.status, 503);
    const hb = (await h.json()) as any;
    assert.equal(hb.decode_instances[0].url, d.url);
    assert.equal(hb.decode_instances[0].healthy, false);
    assert.match(hb.decode_instances[0].last_error, /503/);
    assert.equal(hb.prefill_instances[0].healthy, true);
    hc = (await (await fetch(`${proxy.url}/healthcheck`)).json()) as any;
    assert.equal(hc.status, 'unhealthy');
    assert.equal(hc.healthy_decode_instances, 0);
    d.healthy = true;
    await proxy.checkHealth();
    h = await fetch(`${proxy.url}/health`);
    assert.equal(h.status, 200);
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('the health loop runs by itself when enabled', async () => {
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const proxy = await testProxy([], [d.url], { healthIntervalMs: 50 });
  try {
    d.healthy = false;
    for (let i = 0; i < 100 && proxy.state.decoders.all[0]!.healthy; i++) await sleep(20);
    assert.equal(proxy.state.decoders.all[0]!.healthy, false);
    d.healthy = true;
    for (let i = 0; i < 100 && !proxy.state.decoders.all[0]!.healthy; i++) await sleep(20);
    assert.equal(proxy.state.decoders.all[0]!.healthy, true);
  } finally {
    await proxy.close();
    await d.close();
  }
});

test('/metrics has per-phase histograms, counters and per-upstream counts', async () => {
  const p = await startStub((r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub(async (r, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {}\n\n');
    await sleep(30);
    res.end('data: [DONE]\n\n');
  });
  const proxy = await testProxy([p.url], [d.url]);
  try {
    for (let i = 0; i < 3; i++) assert.equal((await postJson(`${proxy.url}/v1/completions`, { prompt: 'q', stream: true })).status, 200);
    const res = await fetch(`${proxy.url}/metrics`);
    assert.match(String(res.headers.get('content-type')), /text\/plain/);
    const m = await res.text();
    assert.match(m, /pdserve_proxy_prefill_seconds_count{endpoint="\/v1\/completions"} 3/);
    assert.match(m, /pdserve_proxy_decode_ttft_seconds_count{endpoint="\/v1\/completions"} 3/);
    assert.match(m, /pdserve_proxy_e2e_seconds_count{endpoint="\/v1\/completions"} 3/);
    const e2eSum = Number(/pdserve_proxy_e2e_seconds_sum{endpoint="\/v1\/completions"} ([\d.e-]+)/.exec(m)![1]);
    assert.ok(e2eSum >= 0.09, `3 requests of >= 30 ms each, got ${e2eSum}`);
    assert.match(m, /pdserve_proxy_requests_total{endpoint="\/v1\/completions",mode="disagg"} 3/);
    assert.match(m, /pdserve_proxy_inflight_requests 0/);
    assert.match(m, new RegExp(`pdserve_proxy_upstream_requests_total{role="prefill",upstream="${p.url}",outcome="ok"} 3`));
    assert.match(m, new RegExp(`pdserve_proxy_upstream_requests_total{role="decode",upstream="${d.url}",outcome="ok"} 3`));
    assert.match(m, new RegExp(`pdserve_proxy_upstream_healthy{role="decode",upstream="${d.url}"} 1`));
  } finally {
    await proxy.close();
    await p.close();
    await d.close();
  }
});

test('/v1/models comes from a decoder', async () => {
  const models = { object: 'list', data: [{ id: 'tiny', object: 'model' }] };
  const d = await startStub((r, res) => (r.path === '/v1/models' ? sendJson(res, 200, models) : sendJson(res, 200, completion('D'))));
  const proxy = await testProxy([], [d.url]);
  try {
    const res = await fetch(`${proxy.url}/v1/models`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), models);
  } finally {
    await proxy.close();
    await d.close();
  }
});

test('/tokenize, /detokenize, /version and /v1/models/{id} are relayed to a decoder, 4xx as it came', async () => {
  const seen: string[] = [];
  const d = await startStub((r, res) => {
    seen.push(`${r.method} ${r.path} ${r.raw}`);
    if (r.path === '/tokenize') return sendJson(res, 200, { tokens: [1, 2], count: 2, max_model_len: 512 });
    if (r.path === '/detokenize') return sendJson(res, 200, { prompt: 'hi' });
    if (r.path === '/version') return sendJson(res, 200, { version: '9.9.9' });
    if (r.path === '/v1/models/org/tiny') return sendJson(res, 200, { id: 'org/tiny', object: 'model' });
    return sendJson(res, 404, { error: { message: 'nope', type: 'NotFoundError', param: null, code: 404 } });
  });
  const proxy = await testProxy([], [d.url]);
  try {
    const tk = await postJson(`${proxy.url}/tokenize`, { prompt: 'hi' });
    assert.deepEqual([tk.status, tk.json.tokens], [200, [1, 2]]);
    const dt = await postJson(`${proxy.url}/detokenize`, { tokens: [1, 2] });
    assert.deepEqual([dt.status, dt.json.prompt], [200, 'hi']);
    assert.deepEqual(await (await fetch(`${proxy.url}/version`)).json(), { version: '9.9.9' });
    assert.equal((await (await fetch(`${proxy.url}/v1/models/org/tiny`)).json()).id, 'org/tiny');
    const missing = await fetch(`${proxy.url}/v1/models/other`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.message, 'nope');
    assert.ok(seen.some((l) => l.startsWith('POST /tokenize') && l.includes('"prompt":"hi"')), seen.join('\n'));
  } finally {
    await proxy.close();
    await d.close();
  }
});

test('--max-inflight: requests beyond it get 429 JSON', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const d = await startStub(async (r, res) => {
    await gate;
    sendJson(res, 200, completion('D'));
  });
  const proxy = await testProxy([], [d.url], { maxInflight: 1 });
  try {
    const first = postJson(`${proxy.url}/v1/completions`, { prompt: 'a' });
    while (d.requests.length === 0) await sleep(5);
    const second = await postJson(`${proxy.url}/v1/completions`, { prompt: 'b' });
    assert.equal(second.status, 429);
    assert.equal(second.json.error.type, 'RateLimitError');
    release();
    assert.equal((await first).status, 200);
    assert.equal((await postJson(`${proxy.url}/v1/completions`, { prompt: 'c' })).status, 200);
  } finally {
    release();
    await proxy.close();
    await d.close();
  }
});

test('stats print: vLLM shape, real milliseconds, only after traffic', async () => {
  const prints: string[] = [];
  const p = await startStub(async (r, res) => {
    await sleep(40);
    sendJson(res, 200, completion('P'));
  });
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const { startProxy } = await import('./server.js');
  const { defaultProxyConfig } = await import('./config.js');
  const proxy = await startProxy(
    { ...defaultProxyConfig, host: '127.0.0.1', port: 0, healthIntervalMs: 0, statsIntervalMs: 100, prefillers: [p.url], decoders: [d.url] },
    (t) => prints.push(t),
  );
  const stubs: Stub[] = [p, d];
  try {
    await sleep(250);
    assert.equal(prints.length, 0, 'no traffic, no print');
    await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    await postJson(`${proxy.url}/v1/completions`, { prompt: 'q' });
    const counted = () => prints.reduce((a, t) => a + Number(/Num requests: (\d+)\n/.exec(t)![1]), 0);
    for (let i = 0; i < 50 && counted() < 2; i++) await sleep(20);
    assert.equal(counted(), 2);
    const t = prints[0]!;
    assert.match(t, /Prefill node TTFT stats:\n - Average \(ms\): [\d.]+\n - Median \(ms\): [\d.]+\n - 99th Percentile \(ms\): [\d.]+/);
    assert.match(t, /Decode node TTFT stats:/);
    const avg = Number(/Prefill node TTFT stats:\n - Average \(ms\): ([\d.]+)/.exec(t)![1]);
    assert.ok(avg >= 39 && avg < 2000, `prefill average is in ms: ${avg}`);
  } finally {
    await proxy.close();
    await Promise.all(stubs.map((s) => s.close()));
  }
});
