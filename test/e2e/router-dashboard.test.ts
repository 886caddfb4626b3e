// Issue 11 acceptance 6: the router's /dashboard in headless Chromium (CSP enforced). A real
// `pdserve router` process (disaggregated_prefill, --api-key) over scripted engines on loopback whose
// labels carry HTML (conditional disaggregation on): the page renders, lists every engine with its label shown as text (no element
// made from it, no script run), shows the overall TTFT percentiles, the disaggregation decisions and a timeline per request, and
// updates after new requests. /dashboard/data wants the API key; the page gets it from #key=.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from '../helpers/chromium.js';
import { spawnPdserve, postJson, type Spawned } from '../helpers/spawn-server.js';
import { startStub, sendJson, completion, sleep, type Stub } from '../helpers/stub-upstream.js';

const KEY = 'dash-key-1';
const PLABEL = 'pre<b id="injected-b">fill</b>';
const DLABEL = '<img id="injected-img" src=x onerror="document.title=\'pwned\'">dec';

function engine(name: string): Promise<Stub> {
  return startStub(async (req, res) => {
    if (req.path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('vllm:num_requests_running 0\nvllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc 0.5\nvllm:gpu_prefix_cache_hits_total 1\nvllm:gpu_prefix_cache_queries_total 4\n');
      return;
    }
    if (req.body?.max_tokens === 1) {
      await sleep(10);
      return sendJson(res, 200, completion(name, { kv_transfer_params: { from: name } }));
    }
    await sleep(15);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (let i = 0; i < 3; i++) {
      res.write(`data: ${JSON.stringify(completion(name))}\n\n`);
      await sleep(5);
    }
    res.end('data: [DONE]\n\n');
  });
}

test('router /dashboard in Chromium: every engine (labels as text), percentiles, timelines, live updates', async (t) => {
  const stubs = await Promise.all(['p0', 'd0', 'd1'].map(engine));
  const [p0, d0, d1] = stubs as [Stub, Stub, Stub];
  let router: Spawned | null = null;
  const ctx = await launchChromium(t, true);
  if (!ctx) return void (await Promise.all(stubs.map((s) => s.close())));
  try {
    router = await spawnPdserve([
      'router', '--static-backends', [p0.url, d0.url, d1.url].join(','), '--static-model-labels', [PLABEL, DLABEL, 'plain-decoder'].join(','),
      '--routing-logic', 'disaggregated_prefill', '--prefill-model-labels', PLABEL, '--decode-model-labels', `${DLABEL},plain-decoder`,
      '--engine-stats-interval', '0.2', '--api-key', KEY, '--prefill-busy-load', '100',
    ]);
    const auth = { authorization: `Bearer ${KEY}` };
    const send = async (n: number, tag: string) => {
      for (let i = 0; i < n; i++) {
        const r = await fetch(`${router!.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `${tag}-${i}`, ...auth }, body: JSON.stringify({ prompt: `hi ${i}`, max_tokens: 3, stream: true }) });
        assert.equal(r.status, 200);
        await r.text();
      }
    };
    assert.equal((await fetch(`${router.url}/dashboard/data`)).status, 401, 'the data wants the API key');
    assert.equal((await postJson(`${router.url}/v1/completions`, { prompt: 'x' })).status, 401);
    const page = await fetch(`${router.url}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
    await send(4, 'first');

    const tab = await ctx.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(String(e)));
    tab.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await tab.goto(`${router.url}/dashboard#key=${KEY}`);
    await tab.waitForSelector('body[data-requests-total="4"]', { timeout: 10_000 });
    assert.equal(new URL(tab.url()).hash, '', 'the key leaves the address bar');
    for (const s of stubs) assert.equal(await tab.locator(`tr[data-engine="${s.url}"]`).count(), 1, `engine ${s.url} listed`);
    const labels = await tab.locator('#engines tbody tr td:nth-child(3)').allTextContents();
    assert.deepEqual(labels, [PLABEL, DLABEL, 'plain-decoder'], 'labels shown as their text');
    assert.equal(await tab.locator('#injected-b, #injected-img').count(), 0, 'no element made from a label');
    assert.notEqual(await tab.title(), 'pwned');
    assert.deepEqual(await tab.locator('#engines tbody tr td:nth-child(2)').allTextContents(), ['prefill', 'decode', 'decode']);
    await tab.waitForFunction(() => document.querySelector('#engines tbody tr td:nth-child(10)')?.textContent === '50.0%', null, { timeout: 5000 });
    assert.equal(await tab.locator('#engines tbody tr').first().locator('td:nth-child(11)').textContent(), '25.0%', 'prefix hit rate from the engine');
    const ttft = await tab.locator('#overview tr', { hasText: 'TTFT' }).locator('td').nth(1).textContent();
    const [p50, p99] = ttft!.split(' / ').map(Number);
    assert.ok(p50! > 10 && p99! >= p50!, `TTFT p50/p99 ${ttft}`);
    assert.equal(await tab.locator('#overview tr', { hasText: 'disaggregation decisions' }).locator('td').nth(1).textContent(),
      'remote 4, local_short 0, local_prefix_hit 0, local_prefill_busy 0, remote_decode_busy 0');
    const rows = tab.locator('#requests tbody tr');
    assert.equal(await rows.count(), 4);
    const first = tab.locator('tr[data-request="first-3"]');
    assert.equal(await first.locator('td').nth(2).textContent(), p0.url, 'prefilled on p0');
    for (const seg of ['queued', 'prefill', 'decoder', 'decode']) assert.equal(await first.locator(`[data-seg="${seg}"]`).count(), 1, `${seg} segment`);
    const w = await first.locator('[data-seg="decode"]').evaluate((e) => e.getBoundingClientRect().width);
    assert.ok(w > 1, 'segment widths set under the CSP');

    await send(3, 'second');
    await tab.waitForSelector('body[data-requests-total="7"]', { timeout: 10_000 });
    assert.equal(await tab.locator('tr[data-request="second-2"]').count(), 1, 'new requests appear without a reload');
    assert.equal(await rows.first().getAttribute('data-request'), 'second-2', 'newest first');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await router?.stop();
    await Promise.all(stubs.map((s) => s.close()));
  }
});
