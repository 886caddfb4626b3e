// `pdserve bench kv --transport tcp`: one prompt's KV (default 7500 tokens) of a model's shape pulled
// over the tcp KV transport between two processes, on loopback and between two network namespaces
// joined by a veth pair (made and removed here), next to a raw TCP blast of the same bytes (the same
// region, plain sockets, no framing or authentication) over the same number of connections, measured
// in the same run and interleaved with the transport's runs. Each figure: best of `iters` timed runs
// after one warm-up. GB/s here is 1e9 bytes/s.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateInternalSecretFile } from '../../security/internal-secret.js';
import { createNetnsPair, netnsUnavailable, type NetnsPair } from './netns.js';
import { spawnPeer, type PeerHandle } from './peer-handle.js';
import type { PeerShape } from './pattern.js';

/** KV geometry of the benchmarked models (from their HF configs). */
export const TCP_BENCH_SHAPES: Record<string, Omit<PeerShape, 'numBlocks' | 'blockSize'>> = {
  'llama-3.1-8b': { model: 'meta-llama/Llama-3.1-8B', kvDtype: 'bf16', numLayers: 32, numKvHeads: 8, headDim: 128 },
  'qwen3-0.6b': { model: 'Qwen/Qwen3-0.6B', kvDtype: 'bf16', numLayers: 28, numKvHeads: 8, headDim: 128 },
};

export type TcpBenchWhere = 'loopback' | 'netns';

export interface TcpBenchOptions {
  tokens: number;
  blockSize: number;
  shapes: string[];
  where: TcpBenchWhere[];
  connections: number;
  iters: number;
  /** progress lines (stderr) */
  log?: (line: string) => void;
}

export interface TcpBenchRow {
  shape: string;
  where: TcpBenchWhere;
  bytes: number;
  connections: number;
  tcpGBs: number;
  rawGBs: number;
  ratio: number;
  tcpMs: number[];
  rawMs: number[];
}

export interface TcpBenchResult {
  options: TcpBenchOptions;
  rows: TcpBenchRow[];
  skipped: string[];
}

const best = (a: number[]) => Math.min(...a);

async function runOne(name: string, shape: PeerShape, where: TcpBenchWhere, pair: NetnsPair | null, secretFile: string, o: TcpBenchOptions): Promise<TcpBenchRow> {
  const s = JSON.stringify(shape);
  const host = pair ? pair.addrA : '127.0.0.1';
  let srv: PeerHandle | null = null;
  let rd: PeerHandle | null = null;
  try {
    srv = spawnPeer(pair ? pair.execIn(pair.nsA) : [], 'serve', ['--internal-secret-file', secretFile, '--host', host, '--shape', s, '--seed', '0']);
    const l = await srv.next((e) => e.event === 'listening', 120_000);
    rd = spawnPeer(pair ? pair.execIn(pair.nsB) : [], 'read', [
      '--internal-secret-file',
      secretFile,
      '--peer',
      `${host}:${l.port}`,
      '--blast-port',
      String(l.blastPort),
      '--shape',
      s,
      '--connections',
      String(o.connections),
      '--iters',
      String(o.iters + 1),
      '--timeout-ms',
      '120000',
    ]);
    const st = await rd.next((e) => e.event === 'stats' || e.event === 'error', 60_000 + 30_000 * (o.iters + 1));
    if (st.event === 'error') throw new Error(`tcp read failed: ${String(st.message)}`);
    const reads = rd.events.filter((e) => e.event === 'read').slice(1); // the first run of each is the warm-up
    const blasts = rd.events.filter((e) => e.event === 'blast').slice(1);
    const bytes = reads[0]!.bytes as number;
    const tcpMs = reads.map((e) => e.ms as number);
    const rawMs = blasts.map((e) => e.ms as number);
    const tcpGBs = bytes / 1e9 / (best(tcpMs) / 1000);
    const rawGBs = bytes / 1e9 / (best(rawMs) / 1000);
    o.log?.(`  ${name} ${where}: tcp ${tcpGBs.toFixed(2)} GB/s, raw ${rawGBs.toFixed(2)} GB/s`);
    return { shape: name, where, bytes, connections: o.connections, tcpGBs, rawGBs, ratio: tcpGBs / rawGBs, tcpMs, rawMs };
  } finally {
    await rd?.stop();
    await srv?.stop();
  }
}

export async function runTcpBench(o: TcpBenchOptions): Promise<TcpBenchResult> {
  for (const n of o.shapes) if (!TCP_BENCH_SHAPES[n]) throw new Error(`unknown shape '${n}' (known: ${Object.keys(TCP_BENCH_SHAPES).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'pds-tcp-bench-'));
  const secretFile = join(dir, 'secret');
  generateInternalSecretFile(secretFile);
  const rows: TcpBenchRow[] = [];
  const skipped: string[] = [];
  let pair: NetnsPair | null = null;
  try {
    for (const where of o.where) {
      if (where === 'netns') {
        const why = netnsUnavailable();
        if (why) {
          skipped.push(`netns: ${why}`);
          continue;
        }
        pair = createNetnsPair('b');
      }
      for (const name of o.shapes) {
        const shape: PeerShape = { ...TCP_BENCH_SHAPES[name]!, blockSize: o.blockSize, numBlocks: Math.ceil(o.tokens / o.blockSize) };
        rows.push(await runOne(name, shape, where, where === 'netns' ? pair : null, secretFile, o));
      }
    }
  } finally {
    pair?.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  return { options: { ...o, log: undefined }, rows, skipped };
}

export function formatTcpBench(r: TcpBenchResult): string {
  const o = r.options;
  const lines = [
    `KV over the tcp transport: ${o.tokens} tokens (block size ${o.blockSize}), ${o.connections} connections, best of ${o.iters} after a warm-up; raw = plain TCP blast of the same bytes over the same connections, same run`,
    `${'shape'.padEnd(14)}${'where'.padEnd(10)}${'GB'.padStart(7)}${'tcp GB/s'.padStart(10)}${'raw GB/s'.padStart(10)}${'ratio'.padStart(8)}`,
  ];
  for (const x of r.rows)
    lines.push(`${x.shape.padEnd(14)}${x.where.padEnd(10)}${(x.bytes / 1e9).toFixed(3).padStart(7)}${x.tcpGBs.toFixed(2).padStart(10)}${x.rawGBs.toFixed(2).padStart(10)}${x.ratio.toFixed(2).padStart(8)}`);
  for (const s of r.skipped) lines.push(`skipped ${s}`);
  return lines.join('\n');
}
