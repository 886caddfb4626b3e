// `pdserve bench sweep` (a real CLI process) against scripted stubs on loopback: three rates, two
// targets, SLO attainment cross-checked against the per-request data of each point, DistServe's
// goodput per GPU, the HTML report rendered in headless Chromium, Ctrl+C keeping finished points.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { launchChromium } from '../helpers/chromium.js';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from '../helpers/fixtures.js';
import { startStubServer } from '../../src/bench/stub-server.js';
import { colorOf, sweepPlotIds } from '../../src/bench/sweep-report.js';


function run(args: string[], opts: { sigintAfter?: RegExp; delayMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (d) => {
    stdout += d;
    if (opts.sigintAfter && !sent && opts.sigintAfter.test(stdout)) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), opts.delayMs ?? 0);
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) => child.on('exit', (code) => (clearTimeout(killer), resolve({ code, stdout, stderr }))));
}

const workload = ['--tokenizer', 'llama-3.1-8b', '--random-input-len', '32', '--seed', '1', '--burstiness', '100'];

function hexToRgb(h: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
}

test('sweep: two targets over three rates, attainment from the per-request data, goodput per GPU, report in Chromium', async (t) => {
  // A: one 100 ms prefill slot -> at 40 req/s requests queue (TTFT_i >= 100 (i+1) - 25 i ms), so at
  // most 3 of 6 meet TTFT <= 300 ms; at 2 and 4 req/s (250+ ms apart) none waits. B: 20 ms slot.
  const a = await startStubServer({ prefillMs: 100, itlMs: 5, model: 'm' });
  const b = await startStubServer({ prefillMs: 20, itlMs: 5, model: 'm' });
  const dir = mkdtempSync(join(tmpdir(), 'pds-sweep-'));
  try {
    const r = await run(['bench', 'sweep', '--target', `A=${a.url}`, '--target', `B=${b.url}`, '--gpus', 'A=2', '--request-rates', '40,2,4',
      '--goodput', 'ttft:300', 'tpot:50', ...workload, '--num-prompts', '6', '--random-output-len', '8', '--result-dir', dir, '--save-result', '--save-detailed']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(a.stats.requests, 18);
    assert.equal(b.stats.requests, 18);
    const files = readdirSync(dir);
    const sweepJson = files.find((f) => /^sweep-.*\.json$/.test(f))!;
    const html = join(dir, files.find((f) => /^sweep-.*\.html$/.test(f))!);
    const s = JSON.parse(readFileSync(join(dir, sweepJson), 'utf8'));
    assert.deepEqual(s.values, [2, 4, 40]);
    assert.equal(s.interrupted, false);
    assert.deepEqual(s.targets.map((x: any) => [x.name, x.gpus, x.points.map((p: any) => p.x)]), [['A', 2, [2, 4, 40]], ['B', 1, [2, 4, 40]]]);
    for (const tg of s.targets) {
      for (const p of tg.points) {
        // the point's vLLM result (per-request data) gives the same count of good requests
        const f = files.find((x) => x.startsWith(`${tg.name}-${p.x.toFixed(1)}qps-`))!;
        const v = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        let good = 0;
        v.ttfts.forEach((ttft: number, i: number) => {
          const out = v.output_lens[i];
          const tpot = out > 1 ? (v.latencies[i] - ttft) / (out - 1) : 0;
          if (!v.errors[i] && ttft <= 0.3 && tpot <= 0.05) good++;
        });
        assert.equal(p.good, good, `${tg.name}@${p.x}`);
        assert.equal(p.slo_attainment, (100 * good) / 6);
        assert.ok(Math.abs(p.request_goodput - v.request_goodput) < 1e-9);
        assert.ok(Math.abs(p.request_throughput - v.request_throughput) < 1e-9);
        assert.ok(p.p99_ttft_ms >= p.p50_ttft_ms && p.p99_tpot_ms >= p.p50_tpot_ms);
      }
    }
    const [sa, sb] = s.targets;
    assert.deepEqual(sa.points.map((p: any) => p.slo_attainment >= 90), [true, true, false], JSON.stringify(sa.points));
    assert.ok(sa.points[2].slo_attainment <= 50);
    assert.equal(sa.goodput, 4);
    assert.equal(sa.goodput_per_gpu, 2);
    assert.equal(sb.goodput, 40, JSON.stringify(sb.points));
    assert.match(r.stdout, /^A: goodput 4\.00 req\/s \(highest rate with >= 90% attainment, at rate 4\); 2 GPUs -> 2\.00 req\/s per GPU$/m);
    assert.match(r.stdout, /^B: goodput 40\.00 req\/s .*; 20\.00x A per GPU$/m);
    assert.match(r.stdout, /^Best goodput per GPU: B/m);

    // saved sweeps merge into one report without running anything
    const merged = join(dir, 'merged.html');
    const m = await run(['bench', 'sweep', '--from-results', join(dir, sweepJson), '--report', merged]);
    assert.equal(m.code, 0, m.stderr);
    assert.ok(existsSync(merged));

    const page = readFileSync(html, 'utf8');
    assert.doesNotMatch(page, /(src|href)="https?:/, 'no network references');
    for (const id of sweepPlotIds) assert.match(page, new RegExp(`data-plot="${id}"`));
    const ctx = await launchChromium(t);
    if (!ctx) return;
    try {
      const pg = await ctx.newPage();
      const requests: string[] = [];
      pg.on('request', (q) => requests.push(q.url()));
      await pg.goto('file://' + html);
      assert.deepEqual(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')), []);
      assert.deepEqual(await pg.locator('table[data-table="goodput"] tr[data-target]').evaluateAll((rs) => rs.map((x) => x.getAttribute('data-target'))), ['A', 'B']);
      assert.equal(await pg.locator('table[data-table="points"] tr[data-x]').count(), 6);
      assert.match(await pg.locator('[data-verdict]').innerText(), /Highest goodput per GPU: B/);
      for (const id of sweepPlotIds) {
        const fig = pg.locator(`[data-plot="${id}"]`);
        assert.ok(await fig.isVisible(), `${id} visible`);
        for (const name of ['A', 'B']) {
          const d = await fig.locator(`path[data-series="${name}"]`).getAttribute('d');
          assert.ok(d && d.length > 10, `${id}: ${name} drawn`);
          const xs = await fig.locator(`circle[data-series="${name}"]`).evaluateAll((cs) => cs.map((c) => Number(c.getAttribute('data-x'))));
          assert.deepEqual(xs, [2, 4, 40], `${id}: one marker per rate for ${name}`);
        }
        const png = (await fig.screenshot()).toString('base64');
        const px = await pg.evaluate(async ({ b64, ca, cb }) => {
          const img = new Image();
          img.src = 'data:image/png;base64,' + b64;
          await img.decode();
          const c = document.createElement('canvas');
          c.width = img.width;
          c.height = img.height;
          const g = c.getContext('2d')!;
          g.drawImage(img, 0, 0);
          const d = g.getImageData(0, 0, c.width, c.height).data;
          const near = (i: number, rgb: number[]) => Math.abs(d[i]! - rgb[0]!) + Math.abs(d[i + 1]! - rgb[1]!) + Math.abs(d[i + 2]! - rgb[2]!) < 60;
          let a = 0, b = 0;
          for (let i = 0; i < d.length; i += 4) {
            if (near(i, ca)) a++;
            if (near(i, cb)) b++;
          }
          return { a, b };
        }, { b64: png, ca: hexToRgb(colorOf(0)), cb: hexToRgb(colorOf(1)) });
        assert.ok(px.a > 50 && px.b > 50, `${id}: both targets drawn (${JSON.stringify(px)})`);
      }
    } finally {
      await ctx.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('sweep: Ctrl+C keeps the finished points, discards the one in progress, writes JSON and report', async () => {
  const stub = await startStubServer({ ttftMs: 10, itlMs: 50, model: 'm' }); // 20 tokens: ~1 s a request
  const dir = mkdtempSync(join(tmpdir(), 'pds-sweep-int-'));
  try {
    const r = await run(['bench', 'sweep', '--target', `only=${stub.url}`, '--request-rates', '20,40', '--goodput', 'e2el:5000',
      ...workload, '--num-prompts', '3', '--random-output-len', '20', '--result-dir', dir], { sigintAfter: /=== only @ rate 40\.0/, delayMs: 300 });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stdout, /Interrupted: kept 1 completed point of 2; the point in progress \(only @ rate 40\.0\) was discarded\./);
    const files = readdirSync(dir);
    const s = JSON.parse(readFileSync(join(dir, files.find((f) => f.endsWith('.json'))!), 'utf8'));
    assert.equal(s.interrupted, true);
    assert.equal(s.completed_points, 1);
    assert.deepEqual(s.targets[0].points.map((p: any) => [p.x, p.completed, p.slo_attainment]), [[20, 3, 100]]);
    const html = readFileSync(join(dir, files.find((f) => f.endsWith('.html'))!), 'utf8');
    assert.match(html, /data-interrupted>Interrupted: 1 of 2 points completed/);
  } finally {
    await stub.close();
  }
});

/** A recording front for a stub: remembers each completion's prompt, forwards everything. */
async function recordingFront(upstream: string): Promise<{ url: string; prompts: string[]; close(): Promise<void> }> {
  const { createServer } = await import('node:http');
  const prompts: string[] = [];
  const srv = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (req.method === 'POST') prompts.push(JSON.stringify(JSON.parse(body.toString()).prompt));
    const r = await fetch(upstream + req.url, { method: req.method, headers: { 'content-type': 'application/json' }, body: req.method === 'POST' ? body : undefined });
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
    if (r.body) for await (const c of r.body) res.write(c);
    res.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, prompts, close: () => new Promise((r) => srv.close(() => r())) };
}

test('sweep --fresh-prompts: new prompts at each rate, the same for every target', async () => {
  const stub = await startStubServer({ ttftMs: 1, itlMs: 1, model: 'm' });
  const A = await recordingFront(stub.url);
  const B = await recordingFront(stub.url);
  const dir = mkdtempSync(join(tmpdir(), 'pds-sweep-fresh-'));
  try {
    const r = await run(['bench', 'sweep', '--target', `A=${A.url}`, '--target', `B=${B.url}`, '--request-rates', '50,100', '--goodput', 'e2el:5000',
      ...workload, '--num-prompts', '4', '--random-output-len', '2', '--result-dir', dir, '--fresh-prompts']);
    assert.equal(r.code, 0, r.stderr);
    const post = (p: string[]) => p.filter((x) => x !== undefined && x !== 'undefined');
    const a = post(A.prompts), b = post(B.prompts);
    assert.equal(a.length, 8, `A got ${a.length} completions`);
    const [a1, a2] = [new Set(a.slice(0, 4)), new Set(a.slice(4))];
    assert.ok([...a2].every((p) => !a1.has(p)), 'the second rate got none of the first rate\'s prompts');
    assert.deepEqual(new Set(b), new Set(a), 'both targets got the same prompts');
    const s = JSON.parse(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.json'))!), 'utf8'));
    assert.equal(s.workload.fresh_prompts, true);
  } finally {
    await Promise.all([A.close(), B.close()]);
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
