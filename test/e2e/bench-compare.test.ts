// `pdserve bench compare` (a real CLI process) against two scripted stubs, and its HTML report
// rendered in headless Chromium: every plot present, both runs' colours drawn, non-blank.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { launchChromium } from '../helpers/chromium.js';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from '../helpers/fixtures.js';
import { startStubServer } from '../../src/bench/stub-server.js';
import { plotIds, runColors } from '../../src/bench/report-html.js';


function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => child.on('exit', (code) => (clearTimeout(killer), resolve({ code, stdout, stderr }))));
}

function hexToRgb(h: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
}

test('bench compare: same workload on A and B, side-by-side table, both JSONs, HTML report in Chromium', async (t) => {
  const a = await startStubServer({ ttftMs: 20, itlMs: 5, model: 'm' });
  const b = await startStubServer({ ttftMs: 150, itlMs: 10, model: 'm' });
  const dir = mkdtempSync(join(tmpdir(), 'pds-cmp-'));
  const report = join(dir, 'report.html');
  try {
    const r = await run(['bench', 'compare', '--a', a.url, '--b', b.url, '--label-a', 'disagg', '--label-b', 'colocated',
      '--tokenizer', 'llama-3.1-8b', '--num-prompts', '16', '--random-input-len', '32', '--random-output-len', '8',
      '--request-rate', '40', '--max-concurrency', '4', '--seed', '3', '--result-dir', dir, '--report', report]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(a.stats.requests, 16);
    assert.equal(b.stats.requests, 16);
    const lines = r.stdout.split('\n');
    const header = lines.findIndex((l) => l.includes(' Serving Benchmark Comparison '));
    assert.ok(header > 0, r.stdout);
    assert.equal(lines[header + 1]!.trimEnd(), `${''.padEnd(40)} ${'disagg'.padEnd(12)} ${'colocated'.padEnd(12)} B/A`);
    assert.ok(lines.includes(`${'Total generated tokens:'.padEnd(40)} ${'128'.padEnd(12)} ${'128'.padEnd(12)} ${'1.00'.padEnd(8)}`), r.stdout);
    const ttftRow = lines.slice(header).find((l) => l.startsWith('Median TTFT (ms):'))!;
    const ttftRatio = Number(ttftRow.trim().split(/\s+/).pop());
    // Script: 150 ms vs 20 ms. Loose bound: a loaded CI box can inflate A's TTFT several-fold.
    assert.ok(ttftRatio > 1.5 && ttftRatio < 8, `B/A median TTFT ${ttftRatio} (script: 150 ms vs 20 ms)`);
    const jsons = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
    assert.deepEqual(jsons.map((f) => f.split('-')[0]), ['colocated', 'disagg']);
    for (const f of jsons) assert.equal(JSON.parse(readFileSync(join(dir, f), 'utf8')).completed, 16);

    const html = readFileSync(report, 'utf8');
    assert.doesNotMatch(html, /(src|href)="https?:/, 'no network references');
    for (const id of plotIds) assert.match(html, new RegExp(`data-plot="${id}"`));

    const ctx = await launchChromium(t);
    if (!ctx) return;
    try {
      const page = await ctx.newPage();
      const requests: string[] = [];
      page.on('request', (q) => requests.push(q.url()));
      await page.goto('file://' + report);
      assert.deepEqual(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')), []);
      assert.equal(await page.locator('table[data-table="results"] tr').count() > 10, true);
      for (const id of plotIds) {
        const fig = page.locator(`[data-plot="${id}"]`);
        assert.ok(await fig.isVisible(), `${id} visible`);
        const ds = await fig.locator('path[data-series]').evaluateAll((ps) => ps.map((p) => p.getAttribute('d') ?? ''));
        assert.equal(ds.length, 2, `${id}: one series per run`);
        for (const d of ds) assert.ok(d.length > 10, `${id}: series drawn`);
        const png = (await fig.screenshot()).toString('base64');
        const px = await page.evaluate(async ({ b64, ca, cb }) => {
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
          let nonWhite = 0, a = 0, b = 0;
          for (let i = 0; i < d.length; i += 4) {
            if (d[i]! < 240 || d[i + 1]! < 240 || d[i + 2]! < 240) nonWhite++;
            if (near(i, ca)) a++;
            if (near(i, cb)) b++;
          }
          return { nonWhite, a, b, total: d.length / 4 };
        }, { b64: png, ca: hexToRgb(runColors[0]), cb: hexToRgb(runColors[1]) });
        assert.ok(px.nonWhite > px.total * 0.01, `${id}: screenshot not blank (${JSON.stringify(px)})`);
        assert.ok(px.a > 50 && px.b > 50, `${id}: both runs drawn (${JSON.stringify(px)})`);
      }
    } finally {
      await ctx.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});
