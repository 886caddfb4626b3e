// Issue 11: the dashboard's KV-transfer segment from the decoder's own timing. A real 1P1D flow
// (`pdserve up`: prefiller, decoder, kv-server, internal secret) behind `pdserve router`: a streamed
// request's record gets the decoder's KV load (tokens > 0, load time > 0), the Chromium dashboard shows
// a non-zero KV-transfer segment apart from the decoder's first step, the decoder exports
// pdserve:kv_load_time_seconds, the client sees no timing header or field, and an unsigned caller can
// neither read /v1/kv/timing nor get its own timing id honoured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchChromium } from '../helpers/chromium.js';
import { spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { spawnUp } from '../helpers/spawn-up.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const portOf = (out: string, name: string) => Number(new RegExp(`started ${name} \\(pid \\d+\\) on port (\\d+)`).exec(out)![1]);

test('1P1D behind the router: decoder KV load timing reaches the record and the dashboard; client bytes unchanged', async (t) => {
  const ctx = await launchChromium(t, true);
  if (!ctx) return;
  const up = await spawnUp(['--prefill', '1', '--decode', '1', '--kv-pool-size', '64M', '--', '--served-model-name', MODEL]);
  let router: Spawned | null = null;
  try {
    const p = portOf(up.output(), 'prefiller-0');
    const d = portOf(up.output(), 'decoder-0');
    router = await spawnPdserve([
      'router', '--static-backends', `http://localhost:${p},http://localhost:${d}`, '--static-models', `${MODEL},${MODEL}`,
      '--static-model-labels', 'llama-prefill,llama-decode', '--routing-logic', 'disaggregated_prefill',
      '--prefill-model-labels', 'llama-prefill', '--decode-model-labels', 'llama-decode',
      '--internal-secret-file', join(up.runDir, 'internal-secret'),
    ]);
    const prompt = 'Once upon a time, there was a little girl who loved to play outside in the sun with her friends every day';
    const res = await fetch(`${router.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'kvt-1', 'x-pdserve-timing-id': 'forged' },
      body: JSON.stringify({ model: MODEL, prompt, max_tokens: 8, temperature: 0, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-pdserve-timing-id'), null, 'no timing header reaches the client');
    const text = await res.text();
    assert.doesNotMatch(text, /timing|kv_load|load_ms/, 'no timing field in the relayed stream');
    assert.match(text, /data: \[DONE\]\n\n$/);

    // the router's record gets the decoder's timing (polled after the relay)
    type Rec = { id: string; kv: { load_ms: number; tokens: number; bytes: number } | null; t: Record<string, number | null> };
    let rec: Rec | undefined;
    for (let i = 0; i < 50 && !rec?.kv; i++) {
      await new Promise((r) => setTimeout(r, 100));
      rec = ((await (await fetch(`${router.url}/dashboard/data`)).json()) as { recent: Rec[] }).recent.find((r) => r.id === 'kvt-1');
    }
    assert.ok(rec?.kv, `record has KV timing: ${JSON.stringify(rec)}`);
    assert.ok(rec.kv.tokens > 0 && rec.kv.bytes > 0 && rec.kv.load_ms > 0, JSON.stringify(rec.kv));
    assert.ok(rec.t.kv_start! >= rec.t.decode_start! && rec.t.kv_end! > rec.t.kv_start! && rec.t.first_token! >= rec.t.kv_end!, JSON.stringify(rec.t));

    // an unsigned caller reads nothing (read-once too: the router already took it)
    const steal = await fetch(`http://127.0.0.1:${d}/v1/kv/timing`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: ['forged'] }) });
    assert.equal(steal.status, 401);

    const metrics = await (await fetch(`http://127.0.0.1:${d}/metrics`)).text();
    const count = /pdserve:kv_load_time_seconds_count\{[^}]*\} (\d+)/.exec(metrics);
    assert.ok(count && Number(count[1]) >= 1, 'decoder exports the KV load histogram');

    const tab = await ctx.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(String(e)));
    await tab.goto(`${router.url}/dashboard`);
    await tab.waitForSelector('tr[data-request="kvt-1"] [data-seg="transfer"]', { timeout: 10_000 });
    const row = tab.locator('tr[data-request="kvt-1"]');
    for (const seg of ['queued', 'prefill', 'lookup', 'transfer', 'firststep', 'decode']) assert.equal(await row.locator(`[data-seg="${seg}"]`).count(), 1, `${seg} segment`);
    assert.equal(await row.locator('[data-seg="decoder"]').count(), 0, 'not lumped');
    assert.ok(Number(await row.locator('[data-seg="transfer"]').getAttribute('data-ms')) > 0, 'non-zero KV segment');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    await router?.stop();
    await up.stop();
  }
});
