#!/usr/bin/env node
// The bench client's own ceiling, measured against `pdserve bench stub-server` in a separate process:
//  1. requests/s with 1-token responses (stub answers instantly),
//  2. streamed chunks (SSE events) per second with 256-token instant responses,
//  3. lag from the stub writing a chunk to the client recording it (stub stamps each chunk;
//     loopback + client event loop), paced at 5 ms per token, at 1 and at 64 streams.
// Each throughput is printed beside a bare undici reader (no SSE handling, no records) in the same
// run, as a ratio (best of 3 interleaved rounds each). Needs `node scripts/build.mjs` first. Usage: node scripts/bench-client.mjs [--quick]
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { runBenchmark } = await import(join(root, 'dist/src/bench/runner.js'));
const { percentile } = await import(join(root, 'dist/src/bench/stats.js'));
const quick = process.argv.includes('--quick');

async function stub(args) {
  const child = spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), 'bench', 'stub-server', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve) => child.stdout.on('data', (d) => {
    const m = /listening on (\S+)/.exec(String(d));
    if (m) resolve(m[1]);
  }));
  return { url, stop: () => child.kill('SIGTERM') };
}

const samples = (n, out) => Array.from({ length: n }, () => ({ prompt: 'hello', promptLen: 1, expectedOutputLen: out }));

/** The bench client (runBenchmark): returns {seconds, requests, chunks, records}. */
async function viaClient(url, n, out, conc, keepEvents = false) {
  const dispatcher = new Agent({ keepAliveTimeout: 60_000 });
  const u = new URL(url);
  const w0 = performance.now();
  const r = await runBenchmark({
    dispatcher, origin: u.origin, path: '/v1/completions', chat: false, model: 'stub-model', samples: samples(n, out),
    arrivals: new Array(n).fill(0), maxConcurrency: conc, ignoreEos: true, temperature: null, numWarmups: 0, requestIdPrefix: 'b-', keepEvents,
  });
  const wall = (performance.now() - w0) / 1000;
  await dispatcher.close();
  const ok = r.records.filter((x) => x.success);
  if (ok.length !== n) throw new Error(`client: ${n - ok.length} failed: ${r.records.find((x) => !x.success)?.error}`);
  // seconds: the measured window; parseSeconds: the deferred JSON interpretation after it.
  return { seconds: r.durationS, parseSeconds: wall - r.durationS, requests: n, chunks: ok.reduce((a, x) => a + x.itl.length + 1, 0), records: r.records };
}

/** Baseline: bare undici POSTs, body bytes drained and counted, nothing parsed. */
async function viaBare(url, n, out, conc) {
  const dispatcher = new Agent({ keepAliveTimeout: 60_000 });
  const u = new URL(url);
  const body = JSON.stringify({ model: 'stub-model', prompt: 'hello', max_tokens: out, stream: true, stream_options: { include_usage: true }, ignore_eos: true });
  let next = 0;
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n) {
      next++;
      const res = await dispatcher.request({ origin: u.origin, path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
      for await (const c of res.body) bytes += c.length;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  await dispatcher.close();
  return { seconds, requests: n, chunks: (n * out), bytes };
}

const fmt = (x) => x.toFixed(0).padStart(8);
/** Best of 3 interleaved rounds of client and bare (the machine is shared: take each side's best). */
async function best(url, n, out, conc, key) {
  let c = 0;
  let b = 0;
  let parseUs = Infinity;
  for (let round = 0; round < 3; round++) {
    const rc = await viaClient(url, n, out, conc);
    const rb = await viaBare(url, n, out, conc);
    c = Math.max(c, rc[key] / rc.seconds);
    b = Math.max(b, rb[key] / rb.seconds);
    parseUs = Math.min(parseUs, (rc.parseSeconds / rc.chunks) * 1e6);
  }
  return { c, b, parseUs };
}
console.log(`bench client ceiling on ${process.platform} node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

const instant = await stub([]);
try {
  const n1 = quick ? 1000 : 4000;
  await viaClient(instant.url, 200, 1, 32); // warm up connections and JIT
  await viaBare(instant.url, 200, 1, 32);
  for (const conc of [1, 32]) {
    const { c, b } = await best(instant.url, n1, 1, conc, 'requests');
    console.log(`requests/s, 1-token responses, ${String(conc).padStart(2)} in flight: client ${fmt(c)}  bare undici ${fmt(b)}  ratio ${(c / b).toFixed(2)}`);
  }
  const n2 = quick ? 100 : 400;
  for (const conc of [1, 32]) {
    const { c, b, parseUs } = await best(instant.url, n2, 256, conc, 'chunks');
    console.log(`chunks/s, 256-token instant streams, ${String(conc).padStart(2)} in flight: client ${fmt(c)}  bare undici ${fmt(b)}  ratio ${(c / b).toFixed(2)}  (+${parseUs.toFixed(2)} us/chunk parsed after the run)`);
  }
} finally {
  instant.stop();
}

const paced = await stub(['--itl-ms', '5', '--ttft-ms', '5', '--stamp']);
try {
  for (const conc of [1, 64]) {
    const n = conc === 1 ? 10 : 128;
    const c = await viaClient(paced.url, n, 100, conc, true);
    const lags = [];
    for (const r of c.records) {
      r.events.forEach((ev, i) => {
        const m = /"stub_ts":([0-9.]+)/.exec(ev);
        if (m) lags.push(performance.timeOrigin + r.eventTimes[i] - Number(m[1]));
      });
    }
    lags.sort((a, b) => a - b);
    console.log(`stub write -> client record lag, 5 ms/token, ${String(conc).padStart(2)} streams (${(c.chunks / c.seconds).toFixed(0)} chunks/s): ` +
      `median ${percentile(lags, 50, true).toFixed(3)} ms  p99 ${percentile(lags, 99, true).toFixed(3)} ms  max ${lags[lags.length - 1].toFixed(3)} ms (${lags.length} chunks)`);
  }
} finally {
  paced.stop();
}
