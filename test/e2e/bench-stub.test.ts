// `pdserve bench serve` (a real CLI process) against the scripted stub server on loopback: measured
// latencies vs the script, --max-concurrency enforced (the stub counts), failures counted, server down,
// chat role chunks not taken as the first token, Ctrl+C partial results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from '../helpers/fixtures.js';
import { startStubServer } from '../../src/bench/stub-server.js';

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; json: Record<string, any> | null }

function bench(args: string[], opts: { interruptAfterMs?: number } = {}): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'pds-bench-'));
  const child = spawn(process.execPath, [cliPath, 'bench', 'serve', '--tokenizer', 'llama-3.1-8b', '--save-result', '--save-detailed', '--result-dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    if (opts.interruptAfterMs && stdout.includes('Starting main benchmark run')) {
      const ms = opts.interruptAfterMs;
      opts.interruptAfterMs = 0;
      setTimeout(() => child.kill('SIGINT'), ms);
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => child.on('exit', (code, signal) => {
    clearTimeout(killer);
    const files = readdirSync(dir);
    resolve({ code, signal, stdout, stderr, json: files.length ? JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) : null });
  }));
}

/** The block row exactly as `{:<40} {:<10}` prints it. */
function hasRow(out: string, label: string, value: string): boolean {
  return out.split('\n').includes(`${label.padEnd(40)} ${value.padEnd(10)}`);
}

const workload = ['--dataset-name', 'random', '--random-input-len', '32', '--seed', '1'];

test('latencies match the stub script; max concurrency never exceeded', async () => {
  const stub = await startStubServer({ ttftMs: 100, itlMs: 20 });
  try {
    const r = await bench(['--base-url', stub.url, ...workload, '--num-prompts', '12', '--random-output-len', '10', '--max-concurrency', '3', '--percentile-metrics', 'ttft,tpot,itl,e2el', '--metric-percentiles', '50,99']);
    assert.equal(r.code, 0, r.stderr);
    const j = r.json!;
    assert.equal(j.completed, 12);
    assert.equal(j.failed, 0);
    assert.equal(j.total_output_tokens, 120); // usage.completion_tokens, 12 x 10
    assert.ok(stub.stats.maxInFlight <= 3, `stub saw ${stub.stats.maxInFlight} concurrent requests`);
    assert.equal(stub.stats.maxInFlight, 3);
    assert.ok(j.max_concurrent_requests <= 3);
    // Tolerance: loopback + timers on a loaded 2-core CI box: never early, at most +60 ms late for
    // TTFT (median), ITL/TPOT (means) within 20 ms +-6 ms.
    assert.ok(j.median_ttft_ms >= 99 && j.median_ttft_ms < 160, `median TTFT ${j.median_ttft_ms}`);
    assert.ok(Math.abs(j.mean_tpot_ms - 20) < 6, `mean TPOT ${j.mean_tpot_ms}`);
    assert.ok(Math.abs(j.mean_itl_ms - 20) < 6, `mean ITL ${j.mean_itl_ms}`);
    assert.ok(Math.abs(j.median_itl_ms - 20) < 6, `median ITL ${j.median_itl_ms}`);
    assert.ok(j.median_e2el_ms >= 99 + 9 * 20 && j.median_e2el_ms < 280 + 60, `median E2EL ${j.median_e2el_ms}`);
    assert.equal(j.itls.length, 12);
    for (const itl of j.itls) assert.equal(itl.length, 9);
    assert.match(r.stdout, /^============ Serving Benchmark Result ============$/m);
    assert.ok(hasRow(r.stdout, 'Successful requests:', '12'), r.stdout);
    assert.ok(hasRow(r.stdout, 'Maximum request concurrency:', '3'), r.stdout);
    assert.equal(j.request_goodput, null); // no --goodput: null, and no row (vLLM)
    assert.doesNotMatch(r.stdout, /Request goodput/);
  } finally {
    await stub.close();
  }
});

test('failed requests (HTTP 500, connection dropped mid-stream) are counted and shown; the run goes on', async () => {
  const stub = await startStubServer({ failEvery: 4, dropEvery: 5 });
  try {
    const r = await bench(['--base-url', stub.url, ...workload, '--num-prompts', '12', '--random-output-len', '4']);
    assert.equal(r.code, 0, r.stderr);
    // requests 4, 8, 12 -> 500; 5, 10 -> dropped after one token (request 20 would be both)
    assert.equal(r.json!.completed, 7);
    assert.equal(r.json!.failed, 5);
    assert.ok(hasRow(r.stdout, 'Failed requests:', '5'), r.stdout);
    assert.match(r.stdout, /Error \d \(x3\): HTTP 500: scripted failure/);
    assert.match(r.stdout, /Error \d \(x2\): .*(other side closed|terminated|socket)/i);
    assert.equal(r.json!.errors.filter((e: string) => e).length, 5);
  } finally {
    await stub.close();
  }
});

test('chat endpoint: the role-only first chunk is not the first token', async () => {
  const stub = await startStubServer({ ttftMs: 80, itlMs: 5 });
  try {
    const r = await bench(['--base-url', stub.url, '--endpoint', '/v1/chat/completions', ...workload, '--num-prompts', '4', '--random-output-len', '5']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json!.backend, 'openai-chat');
    assert.equal(r.json!.total_output_tokens, 20);
    assert.ok(r.json!.mean_ttft_ms >= 79, `TTFT ${r.json!.mean_ttft_ms}`);
  } finally {
    await stub.close();
  }
});

test('server down: clear message before the run, non-zero exit', async () => {
  const stub = await startStubServer();
  const url = stub.url;
  await stub.close(); // the port is now closed
  const r = await bench(['--base-url', url, ...workload, '--num-prompts', '2']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot reach the server at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  assert.doesNotMatch(r.stdout, /Starting main benchmark run/);
  assert.equal(r.json, null);
});

test('Ctrl+C stops sending, aborts in-flight requests and prints the partial result', async () => {
  const stub = await startStubServer({ ttftMs: 10, itlMs: 50 });
  try {
    const t0 = Date.now();
    const r = await bench(['--base-url', stub.url, ...workload, '--num-prompts', '50', '--random-output-len', '100', '--max-concurrency', '2'], { interruptAfterMs: 700 });
    assert.ok(Date.now() - t0 < 15_000);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stdout, /Interrupted: sent 2 of 50 requests; 2 in-flight requests aborted/);
    assert.ok(hasRow(r.stdout, 'Failed requests:', '2'), r.stdout);
    assert.match(r.stdout, /^={50}$/m);
    assert.equal(stub.stats.requests, 2);
  } finally {
    await stub.close();
  }
});

test('--goodput: hand-computed good requests from scripted delays; vLLM\'s row after request throughput and request_goodput in the JSON', async () => {
  // Request k (arrival order at the stub) gets TTFT [50, 400][k % 2] ms and ITL [10, 10, 60][k % 3] ms,
  // 10 tokens each. SLO TTFT <= 200 ms and TPOT <= 30 ms: k = 0..5 -> (fast, fast) (slow, fast)
  // (fast, slow) (slow, slow) (fast, fast) (slow, fast) = 2 good, whatever order the requests land in.
  const stub = await startStubServer({ ttftCycleMs: [50, 400], itlCycleMs: [10, 10, 60] });
  try {
    const r = await bench(['--base-url', stub.url, ...workload, '--num-prompts', '6', '--random-output-len', '10', '--goodput', 'ttft:200', 'tpot:30']);
    assert.equal(r.code, 0, r.stderr);
    const j = r.json!;
    assert.equal(j.completed, 6);
    assert.ok(Math.abs(j.request_goodput * j.duration - 2) < 1e-9, `request_goodput ${j.request_goodput} x duration ${j.duration}`);
    assert.ok(Math.abs(j.request_throughput * j.duration - 6) < 1e-9);
    const lines = r.stdout.split('\n');
    const i = lines.findIndex((l) => l.startsWith('Request throughput (req/s):'));
    assert.ok(i > 0, r.stdout);
    assert.equal(lines[i + 1], `${'Request goodput (req/s):'.padEnd(40)} ${j.request_goodput.toFixed(2).padEnd(10)}`);
    assert.ok(lines[i + 2]!.startsWith('Output token throughput (tok/s):'));
    // keys in vLLM's order: request_goodput right after request_throughput
    const keys = Object.keys(j);
    assert.equal(keys[keys.indexOf('request_throughput') + 1], 'request_goodput');
  } finally {
    await stub.close();
  }
});

test('bad --goodput values are clear errors before anything is sent', async () => {
  const stub = await startStubServer();
  try {
    for (const [slo, msg] of [
      [['ttft'], /invalid --goodput 'ttft': give KEY:VALUE pairs/],
      [['ttft:abc'], /invalid --goodput 'ttft:abc'/],
      [['itl:10'], /invalid --goodput metric 'itl'/],
      [['tpot:-5'], /invalid --goodput value 'tpot:-5': the SLO must be >= 0 ms/],
    ] as Array<[string[], RegExp]>) {
      const r = await bench(['--base-url', stub.url, ...workload, '--num-prompts', '2', '--goodput', ...slo]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, msg);
      assert.doesNotMatch(r.stdout, /Starting main benchmark run/);
    }
    assert.equal(stub.stats.requests, 0);
  } finally {
    await stub.close();
  }
});
