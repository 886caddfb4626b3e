// Proxy overhead benchmark: the same streaming workload sent straight to a stub decoder and through
// the proxy (prefill leg to a stub prefiller + decode leg relayed), measured in one run; prints ratios.
// Run: node dist/src/perf/proxy-overhead.js [requests=2000] [concurrency=32] [chunks=64] [promptChars=30000]
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { defaultProxyConfig } from '../proxy/config.js';
import { startProxy } from '../proxy/server.js';
import { summarize } from '../proxy/stats-window.js';

const [requests = 2000, concurrency = 32, chunks = 64, promptChars = 30000] = process.argv.slice(2).map(Number);

function listen(s: Server): Promise<string> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}
const prefiller = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[{"index":0,"text":"x"}]}'));
});
const decoder = createServer((req, res) => {
  req.resume();
  req.on('end', async () => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (let i = 0; i < chunks; i++) {
      res.write(`data: {"choices":[{"index":0,"text":"tok${i}"}]}\n\n`);
      if (i % 8 === 7) await new Promise((r) => setImmediate(r));
    }
    res.end('data: [DONE]\n\n');
  });
});

async function one(url: string, body: string): Promise<[number, number]> {
  const t0 = performance.now();
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  let first = 0;
  for await (const _ of res.body) if (!first) first = performance.now();
  return [first - t0, performance.now() - t0];
}

async function run(url: string, n: number, body: string) {
  const ttft: number[] = [];
  const e2e: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) {
        const [a, b] = await one(url, body);
        ttft.push(a);
        e2e.push(b);
      }
    }),
  );
  return { ttft: summarize(ttft), e2e: summarize(e2e), rps: n / ((performance.now() - t0) / 1000) };
}

const pUrl = await listen(prefiller);
const dUrl = await listen(decoder);
const proxy = await startProxy({ ...defaultProxyConfig, host: '127.0.0.1', port: 0, healthIntervalMs: 0, statsIntervalMs: 0, prefillers: [pUrl], decoders: [dUrl] }, () => undefined);
const body = JSON.stringify({ model: 'm', prompt: 'x'.repeat(promptChars), max_tokens: chunks, stream: true });
const direct = `${dUrl}/v1/completions`;
const via = `${proxy.url}/v1/completions`;
await run(direct, 200, body); // warm both paths
await run(via, 200, body);
const d = await run(direct, requests, body);
const v = await run(via, requests, body);
const f = (x: number) => x.toFixed(2);
console.log(`requests ${requests}, concurrency ${concurrency}, ${chunks} SSE chunks, prompt ${promptChars} chars`);
console.log(`direct to decoder : TTFT median ${f(d.ttft.medianMs)} ms p99 ${f(d.ttft.p99Ms)} ms | E2E median ${f(d.e2e.medianMs)} ms | ${f(d.rps)} req/s`);
console.log(`through the proxy : TTFT median ${f(v.ttft.medianMs)} ms p99 ${f(v.ttft.p99Ms)} ms | E2E median ${f(v.e2e.medianMs)} ms | ${f(v.rps)} req/s`);
console.log(`ratios proxy/direct: TTFT median x${f(v.ttft.medianMs / d.ttft.medianMs)}, E2E median x${f(v.e2e.medianMs / d.e2e.medianMs)}, throughput x${f(v.rps / d.rps)}`);
console.log(`added per request (median): TTFT +${f(v.ttft.medianMs - d.ttft.medianMs)} ms (includes the prefill round trip)`);
await proxy.close();
prefiller.close();
decoder.close();
