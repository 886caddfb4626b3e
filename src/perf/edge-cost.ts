// Issue 9 benchmark, the cost of the safety: one run, rounds alternating A B A B ... against two
// `pdserve serve` engines of the default model (stories260k) started side by side:
//   A = no --api-key, --tokenizer-pool-size 0 (tokenization on the event loop)
//   B = --api-key, --tokenizer-pool-size 2 (the worker-pool tokenizer)
// Each round is `bench serve` (random dataset, --max-concurrency 32, all at once) run programmatically;
// round i of A and of B use the same seeded workload (seed 1000 + i), so prefix caching helps neither.
// Prints each round's figures and the request-throughput ratio B/A (goal >= 0.97), then the canary:
// a small request every 200 ms to each engine, its p50/p99/max at rest and while a 56 MiB prompt without
// whitespace is sent (the 400 it gets and how long that took).
// Both engines get --max-request-body-bytes 64M so the 56 MiB body reaches the prompt checks.
// The client sends the key to both (OPENAI_API_KEY, as `bench serve` does): A ignores it, so the client
// side is identical and only the server's work differs.
// Run: node dist/src/perf/edge-cost.js [--rounds 3] [--num-prompts 6000] [--input-len 64] [--output-len 16]
//      [--concurrency 32] [--pool-size 2]
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const KEY = 'sk-edge-cost';
process.env.OPENAI_API_KEY = KEY; // read by bench's request.ts when it loads: set before the import below
const { parseReport, parseTarget, parseWorkload } = await import('../bench/config.js');
const { prepareWorkload, resolveTarget, runServe } = await import('../bench/serve-run.js');

const { values: a } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'num-prompts': { type: 'string', default: '6000' },
    'input-len': { type: 'string', default: '64' },
    'output-len': { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '32' },
    'pool-size': { type: 'string', default: '2' },
  },
});
const rounds = Number(a.rounds);
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const log = (l: string) => process.stdout.write(l + '\n');

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

interface Engine {
  name: string;
  url: string;
  proc: ChildProcess;
}

async function startEngine(name: string, flags: string[]): Promise<Engine> {
  const port = await freePort();
  const env = { ...process.env, PDSERVE_API_KEY: '', VLLM_API_KEY: '' };
  const proc = spawn(process.execPath, [cli, 'serve', '--port', String(port), '--max-request-body-bytes', '64M', ...flags], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 120_000;
  for (;;) {
    if (proc.exitCode !== null || Date.now() > end) throw new Error(`${name} did not start: ${err}`);
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`${name}: ${url} (serve ${flags.join(' ') || '(no extra flags)'})`);
  return { name, url, proc };
}

const raw = (baseUrl: string, seed: number) => ({
  datasetName: 'random', numPrompts: a['num-prompts'], seed: String(seed), randomInputLen: a['input-len'], randomOutputLen: a['output-len'],
  randomRangeRatio: '0', randomPrefixLen: '0', prefixRepetitionPrefixLen: '256', prefixRepetitionSuffixLen: '256',
  prefixRepetitionNumPrefixes: '10', prefixRepetitionOutputLen: '128', customOutputLen: '256', requestRate: 'inf', burstiness: '1',
  maxConcurrency: a.concurrency, numWarmups: '0', ignoreEos: true, disableTqdm: true, baseUrl,
});

async function round(e: Engine, seed: number) {
  const o = raw(e.url, seed);
  const cfg = { ...parseWorkload(o), ...parseReport(o), ...parseTarget(o) };
  const quiet = () => undefined;
  const model = await resolveTarget(cfg, quiet);
  const wl = await prepareWorkload(cfg, cfg, model.id, quiet);
  const r = await runServe(cfg, wl, model, quiet);
  return r.metrics;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN;
};

/** A small request every 200 ms for ms; latencies of the 200 answers, count of the others. */
async function canary(e: Engine, ms: number): Promise<{ lat: number[]; failed: number }> {
  const lat: number[] = [];
  let failed = 0;
  const end = Date.now() + ms;
  const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 2, temperature: 0 });
  while (Date.now() < end) {
    const t0 = performance.now();
    try {
      const r = await fetch(`${e.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body, signal: AbortSignal.timeout(30_000) });
      await r.arrayBuffer();
      if (r.status === 200) lat.push(performance.now() - t0);
      else failed++;
    } catch {
      failed++;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { lat, failed };
}
const fmt = (c: { lat: number[]; failed: number }) =>
  `${c.lat.length} answered, ${c.failed} failed, p50 ${pct(c.lat, 0.5).toFixed(1)} ms, p99 ${pct(c.lat, 0.99).toFixed(1)} ms, max ${Math.max(...c.lat).toFixed(1)} ms`;

async function bigPromptCanary(e: Engine) {
  const idle = await canary(e, 4000);
  const big = JSON.stringify({ prompt: 'x'.repeat(56 * 2 ** 20), max_tokens: 2 });
  const during = canary(e, 6000);
  await new Promise((r) => setTimeout(r, 500));
  const t0 = performance.now();
  const r = await fetch(`${e.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: big, signal: AbortSignal.timeout(60_000) });
  const text = await r.text();
  const bigMs = performance.now() - t0;
  const c = await during;
  log(`${e.name} canary at rest:          ${fmt(idle)}`);
  log(`${e.name} canary during 56 MiB:    ${fmt(c)}`);
  log(`${e.name} the 56 MiB prompt: HTTP ${r.status} in ${bigMs.toFixed(0)} ms (${text.slice(0, 120).replace(/\s+/g, ' ')})`);
}

const A = await startEngine('A', ['--tokenizer-pool-size', '0']);
const B = await startEngine('B', ['--api-key', KEY, '--tokenizer-pool-size', String(a['pool-size'])]);
try {
  // the key is really checked on B (and not on A)
  const noKey = async (e: Engine) => (await fetch(`${e.url}/v1/models`)).status;
  log(`GET /v1/models without a key: A ${await noKey(A)}, B ${await noKey(B)}`);
  log(`bench serve: random ${a['input-len']} in / ${a['output-len']} out, ${a['num-prompts']} prompts, concurrency ${a.concurrency}, ${rounds} rounds A B`);
  const ra: number[] = [];
  const rb: number[] = [];
  for (let i = 0; i < rounds; i++) {
    for (const e of [A, B]) {
      const m = await round(e, 1000 + i);
      (e === A ? ra : rb).push(m.requestThroughput);
      log(`round ${i + 1} ${e.name}: ${m.requestThroughput.toFixed(2)} req/s, ${m.outputThroughput.toFixed(0)} out tok/s, ` +
        `ttft median ${m.ttft.median.toFixed(1)} ms p99 ${(m.ttft.percentiles.find(([p]) => p === 99)?.[1] ?? NaN).toFixed(1)} ms, completed ${m.completed}, failed ${m.failed}`);
    }
    log(`round ${i + 1} ratio B/A: ${(rb[i]! / ra[i]!).toFixed(3)}`);
  }
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  const med = (xs: number[]) => pct(xs, 0.5);
  log(`request throughput ratio B/A: mean-of-rounds ${(sum(rb) / sum(ra)).toFixed(3)}, median per-round ${med(rb.map((b, i) => b / ra[i]!)).toFixed(3)} (goal >= 0.97)`);
  await bigPromptCanary(B);
  await bigPromptCanary(A);
} finally {
  A.proc.kill('SIGTERM');
  B.proc.kill('SIGTERM');
}
