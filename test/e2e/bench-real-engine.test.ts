// `pdserve bench serve` against a real `pdserve serve` with the stories260K fixture: with --ignore-eos,
// Total generated tokens = num-prompts x output-len. Skips (one visible line) when the fixtures are
// absent or `pdserve serve` does not become healthy within 60 s (e.g. the engine is not built yet).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, fixturesOrSkip } from '../helpers/fixtures.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Resolves true once GET /health answers 200, false when the process exits or 60 s pass. */
async function waitHealthy(child: ChildProcess, url: string, timeoutMs = 60_000): Promise<boolean> {
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return true;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

test('bench serve vs pdserve serve (stories260K): generated tokens = prompts x output len with --ignore-eos', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const modelDir = join(fixtures, 'models', 'stories260K');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(process.execPath, [cliPath, 'serve', modelDir, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let serverLog = '';
  server.stdout!.on('data', (d) => (serverLog += d));
  server.stderr!.on('data', (d) => (serverLog += d));
  try {
    if (!(await waitHealthy(server, url))) {
      const why = server.exitCode !== null ? `exited ${server.exitCode}: ${serverLog.trim().split('\n').pop() ?? ''}` : 'no healthy /health within 60 s';
      console.log(`# pdserve serve is not available (${why}): skipping the real-engine bench test`);
      t.skip('pdserve serve not available');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'pds-bench-real-'));
    const numPrompts = 8;
    const outputLen = 12;
    const bench = spawn(process.execPath, [cliPath, 'bench', 'serve', '--base-url', url, '--tokenizer', modelDir,
      '--dataset-name', 'random', '--num-prompts', String(numPrompts), '--random-input-len', '16', '--random-output-len', String(outputLen),
      '--ignore-eos', '--max-concurrency', '4', '--save-result', '--result-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    bench.stdout.on('data', (d) => (out += d));
    bench.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => bench.on('exit', r));
    assert.equal(code, 0, out);
    const j = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8'));
    assert.equal(j.completed, numPrompts, out);
    assert.equal(j.failed, 0);
    assert.equal(j.total_output_tokens, numPrompts * outputLen);
    assert.ok(out.split('\n').includes(`${'Total generated tokens:'.padEnd(40)} ${String(numPrompts * outputLen).padEnd(10)}`), out);
  } finally {
    server.kill('SIGTERM');
    const killer = setTimeout(() => server.kill('SIGKILL'), 5000);
    await new Promise((r) => (server.exitCode !== null || server.signalCode !== null ? r(null) : server.once('exit', r)));
    clearTimeout(killer);
  }
});
