// The decoder's time to first token for one prompt whose KV is retrieved from the kv-server (stored by
// a prefiller) vs computed locally (a prompt nobody stored). Runs `pdserve up --prefill 1 --decode 1`,
// then talks to the prefiller and the decoder directly, one request at a time, fresh random prompts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { Rng } from '../util/rng.js';

export interface DecodeTtftOptions {
  model?: string;
  loadFormat?: string;
  promptLen: number;
  iters: number;
  vocab: number; // token ids are drawn from [100, vocab)
  engineArgs: string[];
}

export interface DecodeTtftResult {
  promptLen: number;
  computedMs: number[];
  retrievedMs: number[];
  medianComputedMs: number;
  medianRetrievedMs: number;
  speedup: number; // computed / retrieved
  retrievedLogLine: string | null;
}

const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

async function complete(url: string, prompt: number[]): Promise<number> {
  const t0 = performance.now();
  const r = await request(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: 1, temperature: 0 }),
  });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${url}: HTTP ${r.statusCode} ${text.slice(0, 300)}`);
  return performance.now() - t0;
}

export async function runDecodeTtft(o: DecodeTtftOptions): Promise<DecodeTtftResult> {
  const runDir = mkdtempSync(join(tmpdir(), 'pdserve-ttft-'));
  const args = ['up', ...(o.model ? [o.model] : []), '--prefill', '1', '--decode', '1', '--port', '0', '--run-dir', runDir];
  if (o.loadFormat) args.push('--load-format', o.loadFormat);
  args.push('--', '--max-num-batched-tokens', String(Math.max(2048, o.promptLen)), ...o.engineArgs);
  const up = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  up.stdout.on('data', (d) => (out += d));
  up.stderr.on('data', (d) => (out += d));
  try {
    while (!out.includes('All servers are up')) {
      if (up.exitCode !== null) throw new Error(`pdserve up failed:\n${out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const port = (name: string) => Number(new RegExp(`started ${name} \\(pid \\d+\\) on port (\\d+)`).exec(out)![1]);
    const P = `http://127.0.0.1:${port('prefiller-0')}`;
    const D = `http://127.0.0.1:${port('decoder-0')}`;
    const rng = new Rng(1234);
    const prompt = () => Array.from({ length: o.promptLen }, () => 100 + Math.floor(rng.random() * (o.vocab - 100)));
    // warm-up both paths (and fault in KV cache pages: first touch of fresh memory is slow on VMs)
    for (let i = 0; i < 2; i++) {
      const w = prompt();
      await complete(P, w);
      await complete(D, w);
      await complete(D, prompt());
    }
    const computedMs: number[] = [];
    const retrievedMs: number[] = [];
    for (let i = 0; i < o.iters; i++) {
      computedMs.push(await complete(D, prompt()));
      const p = prompt();
      await complete(P, p);
      retrievedMs.push(await complete(D, p));
    }
    const log = readFileSync(join(runDir, 'decoder-0.log'), 'utf8').split('\n').filter((l) => l.includes('Retrieved'));
    const mc = median(computedMs);
    const mr = median(retrievedMs);
    return { promptLen: o.promptLen, computedMs, retrievedMs, medianComputedMs: mc, medianRetrievedMs: mr, speedup: mc / mr, retrievedLogLine: log.at(-1) ?? null };
  } finally {
    if (up.exitCode === null && up.signalCode === null) {
      const gone = new Promise((r) => up.once('exit', r));
      up.kill('SIGTERM');
      await gone;
    }
  }
}

export function formatDecodeTtft(r: DecodeTtftResult): string {
  return [
    `Decoder TTFT, ${r.promptLen}-token prompt (median of ${r.computedMs.length}):`,
    `  computed locally:           ${r.medianComputedMs.toFixed(1)} ms`,
    `  KV retrieved from kv-server: ${r.medianRetrievedMs.toFixed(1)} ms`,
    `  ratio computed / retrieved:  ${r.speedup.toFixed(2)}x`,
    ...(r.retrievedLogLine ? [`  decoder log: ${r.retrievedLogLine.replace(/^.*\[kv\] /, '')}`] : []),
  ].join('\n');
}
