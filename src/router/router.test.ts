// The router over scripted engines on loopback: disaggregated_prefill xPyD balancing, roles and
// labels in /engines, production-stack metric names, model filtering, session stickiness, 4xx
// relayed, SSE type, client kv_transfer_params stripped, ejection and re-admission, --log-stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStub, sendJson, completion, sleep, type Stub } from '../../test/helpers/stub-upstream.js';
import { postJson } from '../../test/helpers/proxy-harness.js';
import { testRouter, backend } from '../../test/helpers/router-harness.js';
import { routerConfigFromFlags } from '../cli/router.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

async function engine(name: string, delayMs = 0): Promise<Stub> {
  return startStub(async (req, res) => {
    if (req.path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('vllm:num_requests_running{model_name="m"} 0\nvllm:num_requests_waiting{model_name="m"} 0\nvllm:gpu_cache_usage_perc{model_name="m"} 0.25\nvllm:gpu_prefix_cache_hits_total{model_name="m"} 30\nvllm:gpu_prefix_cache_queries_total{model_name="m"} 120\n');
      return;
    }
    if (delayMs) await sleep(delayMs);
    if (req.body?.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(completion(name))}\n\n`);
      await sleep(5);
      res.end('data: [DONE]\n\n');
      return;
    }
    sendJson(res, 200, completion(name, req.body?.max_tokens === 1 ? { kv_transfer_params: { from: name } } : {}));
  });
}

test('disaggregated_prefill 2P2D: prefill then decode, both pools balanced, /engines and /metrics', async () => {
  const stubs = await Promise.all(['p0', 'p1', 'd0', 'd1'].map((n) => engine(n, 15)));
  const [p0, p1, d0, d1] = stubs as [Stub, Stub, Stub, Stub];
  const r = await testRouter(
    [backend(p0.url, 'llama-prefill', MODEL), backend(p1.url, 'llama-prefill', MODEL), backend(d0.url, 'llama-decode', MODEL), backend(d1.url, 'llama-decode', MODEL)],
    { routingLogic: 'disaggregated_prefill', prefillLabels: ['llama-prefill'], decodeLabels: ['llama-decode'] },
  );
  try {
    const res = await Promise.all(Array.from({ length: 20 }, (_, i) => postJson(`${r.url}/v1/completions`, { model: MODEL, prompt: `hello ${i}`, max_tokens: 5, kv_transfer_params: { evil: true } })));
    for (const x of res) assert.equal(x.status, 200, x.text);
    const gen = (s: Stub) => s.requests.filter((q) => q.path === '/v1/completions');
    for (const s of [p0, p1]) for (const q of gen(s)) assert.equal(q.body.max_tokens, 1);
    for (const s of [d0, d1]) {
      for (const q of gen(s)) {
        assert.equal(q.body.max_tokens, 5);
        assert.ok(!('evil' in (q.body.kv_transfer_params ?? {})), 'the client\'s kv_transfer_params never reach an engine');
        assert.match(String(q.body.kv_transfer_params?.from), /^p[01]$/, 'the prefiller\'s params go to the decoder');
      }
    }
    const counts = stubs.map((s) => gen(s).length);
    assert.equal(counts[0]! + counts[1]!, 20);
    assert.equal(counts[2]! + counts[3]!, 20);
    for (const c of counts) assert.ok(c >= 5, `every engine used, balanced by least-load: ${counts}`);

    await r.scrapeStats();
    const engines = (await (await fetch(`${r.url}/engines`)).json()) as { url: string; role: string; model_label: string; model_names: string[]; healthy: boolean }[];
    assert.deepEqual(engines.map((e) => [e.url, e.role, e.model_label]), [
      [p0.url, 'prefill', 'llama-prefill'], [p1.url, 'prefill', 'llama-prefill'], [d0.url, 'decode', 'llama-decode'], [d1.url, 'decode', 'llama-decode'],
    ]);
    assert.ok(engines.every((e) => e.healthy && e.model_names[0] === MODEL));
    const m = await (await fetch(`${r.url}/metrics`)).text();
    for (const name of ['vllm:current_qps', 'vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:avg_latency', 'vllm:avg_itl', 'vllm:gpu_prefix_cache_hit_rate', 'vllm:num_prefill_requests', 'vllm:num_decoding_requests']) {
      assert.match(m, new RegExp(`^${name}\\{server="${d0.url}"\\} `, 'm'), name);
    }
    assert.match(m, /^vllm:healthy_pods_total 4$/m);
    assert.match(m, new RegExp(`^vllm:gpu_prefix_cache_hit_rate\\{server="${d1.url}"\\} 0.25$`, 'm'), 'hit rate from the engine\'s counters (30/120)');
    const qps = Number(new RegExp(`^vllm:current_qps\\{server="${d0.url}"\\} (\\S+)`, 'm').exec(m)![1]);
    assert.ok(qps > 0, 'qps counts the requests of the window');
    assert.match(m, /pdserve_proxy_requests_total\{endpoint="\/v1\/completions",mode="disagg"\} 20/);
    const health = await fetch(`${r.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await (await fetch(`${r.url}/version`)).json(), { version: '0.1.0' });
  } finally {
    await r.close();
    await Promise.all(stubs.map((s) => s.close()));
  }
});

test('roundrobin: SSE relayed as text/event-stream; unknown model 404; an engine 4xx relayed as that 4xx', async () => {
  const a = await engine('a');
  const bad = await startStub((_req, res) => sendJson(res, 400, { error: { message: 'bad prompt', type: 'BadRequestError', code: 400 } }));
  const r = await testRouter([backend(a.url, null, MODEL), backend(bad.url, null, MODEL)], { routingLogic: 'roundrobin' });
  try {
    const sse = await fetch(`${r.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'x', stream: true }) });
    const t = await sse.text();
    if (sse.status === 200) {
      assert.match(sse.headers.get('content-type')!, /^text\/event-stream/);
      assert.match(t, /data: \[DONE\]/);
    } else assert.equal(sse.status, 400);
    const codes = new Set<number>();
    for (let i = 0; i < 4; i++) codes.add((await postJson(`${r.url}/v1/completions`, { model: MODEL, prompt: 'x' })).status);
    assert.deepEqual([...codes].sort(), [200, 400], 'the 400 of one engine reaches the client as a 400');
    const nf = await postJson(`${r.url}/v1/completions`, { model: 'no-such-model', prompt: 'x' });
    assert.equal(nf.status, 404);
    assert.match(nf.json.error.message, /no-such-model/);
    const models = (await (await fetch(`${r.url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(models.data.map((x) => x.id), [MODEL]);
  } finally {
    await r.close();
    await a.close();
    await bad.close();
  }
});

test('session: one --session-key value sticks to one engine', async () => {
  const stubs = await Promise.all(['a', 'b', 'c'].map((n) => engine(n)));
  const r = await testRouter(stubs.map((s) => backend(s.url)), { routingLogic: 'session', sessionKey: 'x-user-id' });
  try {
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const who = new Set<string>();
      for (let i = 0; i < 4; i++) who.add((await postJson(`${r.url}/v1/completions`, { prompt: 'x' }, { 'x-user-id': user })).json.choices[0].text);
      assert.equal(who.size, 1, `${user} stayed on one engine`);
    }
  } finally {
    await r.close();
    await Promise.all(stubs.map((s) => s.close()));
  }
});

test('health checks eject a failing engine and re-admit it; --log-stats prints every engine', async () => {
  const a = await engine('a');
  const b = await engine('b');
  const printed: string[] = [];
  const r = await testRouter([backend(a.url), backend(b.url)], { routingLogic: 'roundrobin', logStats: true, logStatsIntervalMs: 50 }, {}, (t) => printed.push(t));
  try {
    b.healthy = false;
    await r.checkHealth();
    const who = new Set<string>();
    for (let i = 0; i < 6; i++) who.add((await postJson(`${r.url}/v1/completions`, { prompt: 'x' })).json.choices[0].text);
    assert.deepEqual([...who], ['a'], 'the ejected engine gets nothing');
    b.healthy = true;
    await r.checkHealth();
    for (let i = 0; i < 6; i++) who.add((await postJson(`${r.url}/v1/completions`, { prompt: 'x' })).json.choices[0].text);
    assert.deepEqual([...who].sort(), ['a', 'b'], 're-admitted after a passing check');
    for (let i = 0; i < 100 && printed.length < 2; i++) await sleep(20);
    const last = printed.at(-1)!;
    assert.match(last, new RegExp(`Server: ${a.url}`));
    assert.match(last, new RegExp(`Server: ${b.url}`));
    assert.match(last, /QPS: /);
  } finally {
    await r.close();
    await a.close();
    await b.close();
  }
});

test("the seed's flags parse: static backends, models, labels, disaggregated_prefill", () => {
  const c = routerConfigFromFlags({
    host: '127.0.0.1', port: 8005, serviceDiscovery: 'static',
    staticBackends: 'http://localhost:8100,http://localhost:8200', staticModels: `${MODEL},${MODEL}`, staticModelLabels: 'llama-prefill,llama-decode',
    routingLogic: 'disaggregated_prefill', prefillModelLabels: 'llama-prefill', decodeModelLabels: 'llama-decode',
    logStats: true, logStatsInterval: 10, engineStatsInterval: 10, requestStatsWindow: 10,
    k8sNamespace: 'default', k8sPort: 8000, healthCheckInterval: 3, prefillTimeout: 300, decodeTimeout: 600, connectTimeout: 5, maxInflight: 0,
    apiKey: [], timeoutKeepAlive: 5, httpHeadersTimeout: 10, httpRequestTimeout: 300, maxConnections: 0,
  });
  assert.deepEqual(c.backends.map((b) => [b.url, b.model, b.label]), [['http://localhost:8100', MODEL, 'llama-prefill'], ['http://localhost:8200', MODEL, 'llama-decode']]);
  assert.equal(c.logStatsIntervalMs, 10_000);
  assert.equal(c.gateway.port, 8005);
});

test('a failing engine opens its breaker and gets no more traffic; admission queues then answers 429', async () => {
  const good = await engine('good', 30);
  const failing = await startStub((_req, res) => sendJson(res, 500, { error: { message: 'boom', type: 'InternalServerError', code: 500 } }));
  const r = await testRouter([backend(good.url), backend(failing.url)], { routingLogic: 'roundrobin', breakerFailures: 2, breakerCooldownMs: 60_000, maxQueue: 1, queueTimeoutMs: 5_000 }, { maxInflight: 1 });
  try {
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) seen.push((await postJson(`${r.url}/v1/completions`, { prompt: 'x' })).status);
    assert.equal(seen.filter((s) => s === 500).length, 2, `two failures open the breaker, then only the good engine: ${seen}`);
    assert.ok(seen.slice(-4).every((s) => s === 200));
    const engines = (await (await fetch(`${r.url}/engines`)).json()) as { url: string; breaker: string }[];
    assert.equal(engines.find((e) => e.url === failing.url)!.breaker, 'open');
    assert.match(await (await fetch(`${r.url}/metrics`)).text(), new RegExp(`pdserve_router_breaker_open\\{server="${failing.url}"\\} 1`));
    // 1 in flight + 1 queued; the third is refused at once
    const three = await Promise.all([0, 1, 2].map(() => postJson(`${r.url}/v1/completions`, { prompt: 'y' })));
    assert.deepEqual(three.map((x) => x.status).sort(), [200, 200, 429]);
    assert.equal(three.find((x) => x.status === 429)!.json.error.code, 429);
  } finally {
    await r.close();
    await good.close();
    await failing.close();
  }
});

test('kvaware: the router indexes an engine\'s KV events and routes a shared prefix there; garbage frames are counted, not fatal', async () => {
  const zmq = await import('zeromq');
  const { encodeBatch, encodeSeq } = await import('../kv-events/wire.js');
  const { chainKeys } = await import('../gateway/policies/block-keys.js');
  const [e0, e1] = (await Promise.all(['e0', 'e1'].map((n) => engine(n)))) as [Stub, Stub];
  const pubs = [new zmq.Publisher({ linger: 0 }), new zmq.Publisher({ linger: 0 })];
  for (const p of pubs) await p.bind('tcp://127.0.0.1:0');
  const r = await testRouter([backend(e0.url), backend(e1.url)], { routingLogic: 'kvaware', kvEventsEndpoints: pubs.map((p) => p.lastEndpoint!) });
  try {
    const toks = Array.from({ length: 48 }, (_, i) => 3 + i);
    const keys = chainKeys(toks, 16);
    // e1 reports the prefix; garbage first (after the slow-joiner wait, resent until it is indexed)
    for (let i = 0; i < 100 && (r.kvFeed!.stats()[e1.url]?.blocks ?? 0) < 3; i++) {
      await pubs[1]!.send(['', encodeSeq(0n), Buffer.from('not msgpack at all')]);
      await pubs[1]!.send(['only-one-frame']);
      await pubs[1]!.send(['', encodeSeq(BigInt(i + 1)), encodeBatch({ ts: 1, events: [{ type: 'BlockStored', blockHashes: keys, parentBlockHash: null, tokenIds: toks, blockSize: 16, loraId: null, medium: 'GPU' }], dataParallelRank: 0 })]);
      await sleep(50);
    }
    const st = r.kvFeed!.stats()[e1.url]!;
    assert.equal(st.blocks, 3, JSON.stringify(st));
    assert.ok(st.malformed >= 2, `malformed counted: ${JSON.stringify(st)}`);
    const before = e1.requests.length;
    for (let i = 0; i < 6; i++) {
      const res = await postJson(`${r.url}/v1/completions`, { prompt: [...toks, 900 + i], max_tokens: 2 });
      assert.equal(res.status, 200);
    }
    assert.equal(e1.requests.length - before, 6, 'every request with the prefix went to the engine that reported it');
    const engines = (await (await fetch(`${r.url}/engines`)).json()) as { url: string; kv_events: { blocks: number } | null }[];
    assert.equal(engines.find((e) => e.url === e1.url)!.kv_events!.blocks, 3);
  } finally {
    await r.close();
    for (const p of pubs) p.close();
    await Promise.all([e0.close(), e1.close()]);
  }
});
