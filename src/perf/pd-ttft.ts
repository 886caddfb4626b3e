// TTFT of one long prompt through three deployments started side by side with `pdserve up`: 1P1D with
// the tcp KV transport in push mode (both legs at once, the prefiller writing chunks as it computes
// them), the same in pull mode (prefill, then the decoder pulls), and colocated (one engine, no
// prefill leg). Requests go to each deployment's proxy one at a time, interleaved (the order rotates
// every round), with fresh random prompts (no prefix-cache hit); TTFT = the time to a max_tokens 1
// completion. Ratios are of medians measured in this one run.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { Rng } from '../util/rng.js';

export type PdTopology = 'push' | 'pull' | 'colocated';
export const PD_TOPOLOGIES: readonly PdTopology[] = ['push', 'pull', 'colocated'];

export interface PdTtftOptions {
  model?: string;
  loadFormat?: string;
  promptLen: number;
  iters: number;
  vocab: number; // token ids are drawn from [100, vocab)
  engineArgs: string[]; // after `--` of every `up`
}

export interface PdTtftResult {
  promptLen: number;
  ms: Record<PdTopology, number[]>;
  median: Record<PdTopology, number>;
  ratios: { pullOverPush: number; colocatedOverPush: number; colocatedOverPull: number };
  pushLogLine: string | null;
  pullLogLine: string | null;
}

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

interface Up {
  proc: ChildProcess;
  url: string;
  runDir: string;
  out(): string;
}

async function startUp(t: PdTopology, o: PdTtftOptions): Promise<Up> {
  const runDir = mkdtempSync(join(tmpdir(), `pdserve-pd-ttft-${t}-`));
  const args = ['up', ...(o.model ? [o.model] : []), '--prefill', t === 'colocated' ? '0' : '1', '--decode', '1', '--port', '0', '--run-dir', runDir];
  if (t !== 'colocated') args.push('--kv-transfer', 'tcp', '--kv-mode', t);
  if (o.loadFormat) args.push('--load-format', o.loadFormat);
  args.push('--', ...o.engineArgs);
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  while (!out.includes('All servers are up')) {
    if (proc.exitCode !== null) throw new Error(`pdserve up (${t}) failed:\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const m = /started proxy \(pid \d+\) on port (\d+)/.exec(out);
  if (!m) throw new Error(`pdserve up (${t}): no proxy port in its output`);
  return { proc, url: `http://127.0.0.1:${m[1]}`, runDir, out: () => out };
}

async function stopUp(u: Up): Promise<void> {
  if (u.proc.exitCode !== null || u.proc.signalCode !== null) return;
  const gone = new Promise((r) => u.proc.once('exit', r));
  u.proc.kill('SIGTERM');
  await gone;
}

async function ttft(url: string, prompt: number[]): Promise<number> {
  const t0 = performance.now();
  const r = await request(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: 1, temperature: 0 }),
    headersTimeout: 600_000,
    bodyTimeout: 600_000,
  });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${url}: HTTP ${r.statusCode} ${text.slice(0, 300)}`);
  return performance.now() - t0;
}

const lastRetrieved = (runDir: string) =>
  readFileSync(join(runDir, 'decoder-0.log'), 'utf8').split('\n').filter((l) => l.includes('Retrieved')).at(-1)?.replace(/^.*?Retrieved/, 'Retrieved') ?? null;

export async function runPdTtft(o: PdTtftOptions): Promise<PdTtftResult> {
  const ups: Partial<Record<PdTopology, Up>> = {};
  try {
    // one at a time: engines loading in parallel would only slow each other's start
    for (const t of PD_TOPOLOGIES) ups[t] = await startUp(t, o);
    const rng = new Rng(4321);
    const prompt = () => Array.from({ length: o.promptLen }, () => 100 + Math.floor(rng.random() * (o.vocab - 100)));
    for (const t of PD_TOPOLOGIES) await ttft(ups[t]!.url, prompt()); // warm-up (fresh pages, first connections)
    const ms: Record<PdTopology, number[]> = { push: [], pull: [], colocated: [] };
    for (let i = 0; i < o.iters; i++)
      for (let j = 0; j < PD_TOPOLOGIES.length; j++) {
        const t = PD_TOPOLOGIES[(i + j) % PD_TOPOLOGIES.length]!;
        ms[t].push(await ttft(ups[t]!.url, prompt()));
      }
    const med = { push: median(ms.push), pull: median(ms.pull), colocated: median(ms.colocated) };
    return {
      promptLen: o.promptLen,
      ms,
      median: med,
      ratios: { pullOverPush: med.pull / med.push, colocatedOverPush: med.colocated / med.push, colocatedOverPull: med.colocated / med.pull },
      pushLogLine: lastRetrieved(ups.push!.runDir),
      pullLogLine: lastRetrieved(ups.pull!.runDir),
    };
  } finally {
    await Promise.all(Object.values(ups).map((u) => stopUp(u!)));
  }
}

export function formatPdTtft(r: PdTtftResult): string {
  const row = (name: string, t: PdTopology) => `  ${name.padEnd(28)} ${r.median[t].toFixed(1).padStart(9)} ms   (${r.ms[t].map((x) => x.toFixed(0)).join(', ')})`;
  return [
    `TTFT of a ${r.promptLen}-token prompt (median of ${r.ms.push.length}, interleaved):`,
    row('1P1D tcp push (overlap):', 'push'),
    row('1P1D tcp pull:', 'pull'),
    row('colocated (one engine):', 'colocated'),
    `  ratio pull / push:           ${r.ratios.pullOverPush.toFixed(3)}`,
    `  ratio colocated / push:      ${r.ratios.colocatedOverPush.toFixed(3)}`,
    `  ratio colocated / pull:      ${r.ratios.colocatedOverPull.toFixed(3)}`,
    ...(r.pushLogLine ? [`  push decoder: ${r.pushLogLine}`] : []),
    ...(r.pullLogLine ? [`  pull decoder: ${r.pullLogLine}`] : []),
  ].join('\n');
}
