// Router overhead benchmark (issue 11): 200 sequential tiny requests each, interleaved in one run
// (request i goes to every target in a rotating order), against stub engines on loopback:
//   direct decoder | pdserve proxy (decode only) | pdserve router roundrobin
//   pdserve proxy (prefill + decode)            | pdserve router disaggregated_prefill
// Prints p50/p99 of the client-side latency per target and the router - proxy differences.
// Run: node dist/src/perf/router-overhead.js [requests=200]
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { defaultProxyConfig } from '../gateway/config.js';
import { startProxy } from '../proxy/server.js';
import { startRouter } from '../router/server.js';
import { defaultRouterConfig } from '../router/config.js';
import { summarize } from '../gateway/stats-window.js';

const [requests = 200] = process.argv.slice(2).map(Number);

function listen(s: Server): Promise<string> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}
const answer = '{"id":"c","object":"text_completion","choices":[{"index":0,"text":"x","finish_reason":"length"}]}';
const stub = () =>
  createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length }).end(answer));
  });
const [pS, dS] = [stub(), stub()];
const pUrl = await listen(pS);
const dUrl = await listen(dS);
const gw = { ...defaultProxyConfig, host: '127.0.0.1', port: 0, healthIntervalMs: 0, statsIntervalMs: 0 };
const proxyD = await startProxy({ ...gw, prefillers: [], decoders: [dUrl] }, () => undefined);
const proxyPD = await startProxy({ ...gw, prefillers: [pUrl], decoders: [dUrl] }, () => undefined);
const rBase = { ...defaultRouterConfig, engineStatsIntervalMs: 3_600_000, gateway: { ...defaultRouterConfig.gateway, ...gw } };
const routerD = await startRouter({ ...rBase, routingLogic: 'roundrobin', backends: [{ url: dUrl, model: null, label: null, type: null }] }, () => undefined);
const routerPD = await startRouter(
  {
    ...rBase, routingLogic: 'disaggregated_prefill', prefillLabels: ['p'], decodeLabels: ['d'],
    backends: [{ url: pUrl, model: null, label: 'p', type: null }, { url: dUrl, model: null, label: 'd', type: null }],
  },
  () => undefined,
);
const targets: [string, string][] = [
  ['direct decoder', dUrl],
  ['proxy (decode only)', proxyD.url],
  ['router roundrobin', routerD.url],
  ['proxy (P+D)', proxyPD.url],
  ['router disaggregated_prefill', routerPD.url],
];
const body = JSON.stringify({ model: 'm', prompt: 'hello', max_tokens: 1 });
async function one(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${url}/v1/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
  return performance.now() - t0;
}
const lat = targets.map(() => [] as number[]);
for (let i = 0; i < 50; i++) for (const [, u] of targets) await one(u); // warm-up
for (let i = 0; i < requests; i++) {
  for (let k = 0; k < targets.length; k++) {
    const j = (i + k) % targets.length;
    lat[j]!.push(await one(targets[j]![1]));
  }
}
const s = lat.map((l) => summarize(l));
const f = (x: number) => x.toFixed(3);
console.log(`${requests} sequential tiny requests per target, interleaved; client-side latency`);
targets.forEach(([name], i) => console.log(`${name.padEnd(30)} p50 ${f(s[i]!.medianMs)} ms  p99 ${f(s[i]!.p99Ms)} ms`));
console.log(`router - proxy, decode only: p50 ${f(s[2]!.medianMs - s[1]!.medianMs)} ms, p99 ${f(s[2]!.p99Ms - s[1]!.p99Ms)} ms`);
console.log(`router - proxy, P+D        : p50 ${f(s[4]!.medianMs - s[3]!.medianMs)} ms, p99 ${f(s[4]!.p99Ms - s[3]!.p99Ms)} ms`);
console.log(`router - direct decoder    : p50 ${f(s[2]!.medianMs - s[0]!.medianMs)} ms`);
await Promise.all([proxyD.close(), proxyPD.close(), routerD.close(), routerPD.close()]);
pS.close();
dS.close();
