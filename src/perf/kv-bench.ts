// `pdserve bench kv`: store and retrieve one prompt's KV through each path the PdConnector uses —
// local CPU tier, kv-server shared memory (pool mapped, no KV byte on the socket), kv-server TCP
// (PUT/GET over loopback) — with the connector's own save/load code (saveChunks / loadChunks).
// Each figure is GB/s of KV moved, best of `iters` timed runs after one warm-up, and its ratio to
// single-thread memcpy measured in the same run. The kv-server runs as a child process.
// The KV cache (--kv-cache): `fake` = HostKvCache (JS memcpy per block row, the engine's layout), or
// `native` = the engine's own KV cache and kvGather/kvScatter (a native model with no weights loaded).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPath, loadNative, type NativeModel } from '../native/binding.js';
import type { KvCacheAccess } from '../engine/connector/base.js';
import { kvCacheAccess } from '../engine/create-engine.js';
import type { Logger } from '../util/logger.js';
import { chunkKeys, modelFingerprint, type ChunkRef } from '../kv/chunk-hash.js';
import { saveChunks } from '../kv/connector/chunk-saver.js';
import { loadChunks } from '../kv/connector/chunk-loader.js';
import { HostKvCache } from '../kv/host-kv-cache.js';
import { CpuTier } from '../kv/tiers/cpu-tier.js';
import { PoolTier } from '../kv/tiers/pool-tier.js';
import type { KvTier } from '../kv/tiers/tier.js';
import { MAX_POOL_BYTES } from '../kv/server/kv-server.js';
import { PAGE_SIZE } from '../kv/server/protocol.js';
import { dtypeBytes, kvBytesPerToken, type DType } from '../util/dtype.js';

export interface KvBenchOptions {
  tokens: number; // 7500
  numLayers: number; // 28 (Qwen3-0.6B)
  numKvHeads: number; // 8
  headDim: number; // 128
  kvDtype: DType;
  chunkSize: number; // 256
  blockSize: number; // 16
  iters: number; // timed runs per figure (after one warm-up)
  paths: Array<'local_cpu' | 'shm' | 'tcp'>;
  kvCache: 'fake' | 'native';
  threads: number; // native KV cache: CPU threads (0 = all)
  /** native KV cache on this device (cpu | cuda | cuda:N); on a GPU the pool pages and the bare row's buffer are page-locked */
  device?: string;
}

export interface KvBenchRow {
  path: string;
  storeGBs: number;
  retrieveGBs: number;
  storeRatio: number;
  retrieveRatio: number;
}

export interface KvBenchResult {
  options: KvBenchOptions;
  kvBytes: number;
  chunks: number;
  memcpyGBs: number;
  memcpyMethod: string;
  rows: KvBenchRow[];
}

const GB = 2 ** 30;
const quiet: Logger = { debug() {}, info() {}, warn: (m) => console.error(m), error: (m) => console.error(m) };

/** Single-thread memcpy GB/s: the native helper when built, else Buffer.copy of 256 MiB. */
export function measureMemcpy(): { gbs: number; method: string } {
  try {
    const n = loadNative();
    if (typeof n.measureMemcpy === 'function') return { gbs: n.measureMemcpy(256 * 2 ** 20, 5), method: 'native measureMemcpy' };
  } catch {
    /* fall back */
  }
  const a = Buffer.allocUnsafeSlow(256 * 2 ** 20).fill(1);
  const b = Buffer.allocUnsafeSlow(256 * 2 ** 20).fill(2);
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    a.copy(b);
    const dt = performance.now() - t0;
    if (i > 0) best = Math.min(best, dt);
  }
  return { gbs: a.length / GB / (best / 1000), method: 'Buffer.copy fallback (native measureMemcpy not built)' };
}

async function startServerChild(poolSize: number): Promise<{ port: number; child: ChildProcess; poolFile: string }> {
  const main = join(dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
  const poolFile = `/dev/shm/pdserve-bench-pool-${randomBytes(4).toString('hex')}`;
  const child = spawn(process.execPath, [main, 'kv-server', '--host', '127.0.0.1', '--port', '0', '--pool-size', String(poolSize), '--pool-file', poolFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PDSERVE_LOG_LEVEL: 'INFO' }, // its start line tells the port
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('kv-server did not start in 30 s')), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening on [^\s]+:(\d+)/.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`kv-server exited with ${code}`)));
  });
  child.stdout!.resume();
  return { port, child, poolFile };
}

/** A KV cache of 2 * blocks(tokens) blocks, every block written once (no untouched pages). */
function makeKv(o: KvBenchOptions): { kv: KvCacheAccess; dispose(): void } {
  const nBlocks = Math.ceil(o.tokens / o.blockSize);
  if (o.kvCache === 'fake') {
    const kv = new HostKvCache(2 * nBlocks, o.blockSize, o.numLayers, o.numKvHeads, o.headDim, dtypeBytes[o.kvDtype]);
    kv.data.fill(7);
    return { kv, dispose() {} };
  }
  const n = loadNative();
  if (typeof n.createModel !== 'function') throw new Error('--kv-cache native needs the native core with models (createModel), which this build lacks');
  const model: NativeModel = n.createModel(
    { numLayers: o.numLayers, hiddenSize: o.numKvHeads * o.headDim, intermediateSize: 64, numHeads: o.numKvHeads, numKvHeads: o.numKvHeads, headDim: o.headDim, vocabSize: 64, rmsNormEps: 1e-6, ropeTheta: 1e6, ropeType: 'default', tieWordEmbeddings: true, qkvBias: false, qkNorm: false, weightDtype: o.kvDtype }, // on a GPU the KV dtype must be the weight dtype (or f32)
    { device: o.device ?? 'cpu', threads: o.threads, cudaLibPath: o.device?.startsWith('cuda') ? buildPath('pdserve_cuda.so') : undefined },
  );
  model.allocKvCache(2 * nBlocks, o.blockSize, o.kvDtype);
  const kv = kvCacheAccess(model, o.blockSize, model.kvBytesPerToken()); // as the engine's connector sees it
  return { kv, dispose: () => model.dispose() };
}

async function touchAll(kv: KvCacheAccess, o: KvBenchOptions): Promise<void> {
  const nBlocks = Math.ceil(o.tokens / o.blockSize);
  const buf = Buffer.allocUnsafeSlow(nBlocks * o.blockSize * kv.bytesPerToken).fill(7);
  for (const base of [0, nBlocks]) await kv.scatter(Int32Array.from({ length: nBlocks }, (_, i) => base + i), nBlocks * o.blockSize, buf);
}

async function benchTier(tier: KvTier, o: KvBenchOptions, label: string): Promise<KvBenchRow> {
  const nBlocks = Math.ceil(o.tokens / o.blockSize);
  const { kv, dispose } = makeKv(o);
  await touchAll(kv, o);
  tier.attachKvCache?.(kv);
  const src = Array.from({ length: nBlocks }, (_, i) => i);
  const dst = Array.from({ length: nBlocks }, (_, i) => nBlocks + i);
  const bytes = o.tokens * kv.bytesPerToken;
  const id = { name: 'bench', architecture: 'Qwen3ForCausalLM', dtype: o.kvDtype, numLayers: o.numLayers, numKvHeads: o.numKvHeads, headDim: o.headDim, kvDtype: o.kvDtype };
  let bestStore = Infinity;
  let bestLoad = Infinity;
  for (let it = 0; it <= o.iters; it++) {
    // A fresh prompt each run: every chunk is stored anew (older runs get evicted).
    const tokens = Array.from({ length: o.tokens }, (_, i) => (i * 13 + it * 7919) % 150000);
    const chunks: ChunkRef[] = chunkKeys(modelFingerprint(id), tokens, o.chunkSize, true);
    const t0 = performance.now();
    const s = await saveChunks(kv, [tier], chunks, src, o.tokens, quiet);
    const t1 = performance.now();
    if (s.storedTokens !== o.tokens) throw new Error(`${label}: stored ${s.storedTokens} of ${o.tokens} tokens`);
    const found = await tier.lookupPrefix(chunks.map((c) => c.key), { pin: true });
    if (found !== chunks.length) throw new Error(`${label}: lookup found ${found} of ${chunks.length} chunks`);
    const t2 = performance.now();
    const l = await loadChunks(kv, { chunks, tierOf: chunks.map(() => tier), start: 0, end: o.tokens, blockIds: dst, numLayers: o.numLayers }, 60_000, { value: false });
    const t3 = performance.now();
    await tier.unpin(chunks.map((c) => c.key));
    if (l.error) throw new Error(`${label}: load failed: ${l.error.message}`);
    if (it === 0) continue; // warm-up: page faults of fresh memory
    bestStore = Math.min(bestStore, t1 - t0);
    bestLoad = Math.min(bestLoad, t3 - t2);
  }
  dispose();
  const storeGBs = bytes / GB / (bestStore / 1000);
  const retrieveGBs = bytes / GB / (bestLoad / 1000);
  return { path: label, storeGBs, retrieveGBs, storeRatio: 0, retrieveRatio: 0 };
}

/** The fake cache's own gather into / scatter from one buffer: the floor every path pays once. */
async function benchBare(o: KvBenchOptions): Promise<KvBenchRow> {
  const nBlocks = Math.ceil(o.tokens / o.blockSize);
  const { kv, dispose } = makeKv(o);
  await touchAll(kv, o);
  const buf = Buffer.allocUnsafeSlow(o.tokens * kv.bytesPerToken).fill(1);
  const unpin = kv.registerHost?.(buf) ?? null; // GPU: the floor is a copy into page-locked memory
  const src = Int32Array.from({ length: nBlocks }, (_, i) => i);
  const dst = Int32Array.from({ length: nBlocks }, (_, i) => nBlocks + i);
  let g = Infinity;
  let s = Infinity;
  for (let it = 0; it <= o.iters; it++) {
    const t0 = performance.now();
    await kv.gather(src, o.tokens, buf);
    const t1 = performance.now();
    await kv.scatter(dst, o.tokens, buf);
    const t2 = performance.now();
    if (it === 0) continue;
    g = Math.min(g, t1 - t0);
    s = Math.min(s, t2 - t1);
  }
  unpin?.();
  dispose();
  const gb = buf.length / GB;
  return { path: 'gather/scatter only', storeGBs: gb / (g / 1000), retrieveGBs: gb / (s / 1000), storeRatio: 0, retrieveRatio: 0 };
}

export async function runKvBench(o: KvBenchOptions): Promise<KvBenchResult> {
  const bpt = kvBytesPerToken(o.numLayers, o.numKvHeads, o.headDim, o.kvDtype);
  const kvBytes = o.tokens * bpt;
  // memcpy is measured before every row and the best figure is the denominator: on a busy machine a
  // single low reading would flatter every ratio.
  const mc = measureMemcpy();
  const remeasure = () => (mc.gbs = Math.max(mc.gbs, measureMemcpy().gbs));
  const rows: KvBenchRow[] = [await benchBare(o)];
  // Room for ~1.2 prompts: steady-state runs evict the previous prompt (LRU churn), as a full cache does.
  const room = Math.ceil((kvBytes * 1.2) / PAGE_SIZE) * PAGE_SIZE + 64 * 2 ** 20;
  if (o.paths.includes('local_cpu')) {
    const cpu = new CpuTier(room);
    remeasure();
    rows.push(await benchTier(cpu, o, 'local_cpu'));
    await cpu.close();
  }
  const remote = o.paths.filter((p) => p !== 'local_cpu') as Array<'shm' | 'tcp'>;
  if (remote.length) {
    const poolSize = Math.min(MAX_POOL_BYTES, room + PAGE_SIZE);
    if (kvBytes + PAGE_SIZE > poolSize) throw new Error(`one KV (${kvBytes} bytes) does not fit a 4 GiB pool`);
    const srv = await startServerChild(poolSize);
    try {
      for (const t of remote) {
        const tier = new PoolTier({ host: '127.0.0.1', port: srv.port, transport: t, timeoutMs: 30_000, backoffMs: 100 });
        await tier.connect();
        if (tier.mode !== t) throw new Error(`kv-server transport ${t} unavailable (got ${tier.mode})`);
        remeasure();
        rows.push(await benchTier(tier, o, t === 'shm' ? 'kv-server shm' : 'kv-server tcp'));
        await tier.close();
      }
    } finally {
      srv.child.kill('SIGTERM');
      await new Promise((r) => srv.child.once('exit', r));
    }
  }
  remeasure();
  for (const r of rows) {
    r.storeRatio = r.storeGBs / mc.gbs;
    r.retrieveRatio = r.retrieveGBs / mc.gbs;
  }
  return { options: o, kvBytes, chunks: Math.ceil(o.tokens / o.chunkSize), memcpyGBs: mc.gbs, memcpyMethod: mc.method, rows };
}

export function formatKvBench(r: KvBenchResult): string {
  const o = r.options;
  const bare = r.rows[0]!; // 'gather/scatter only'
  const line = (cols: string[]) => cols[0]!.padEnd(18) + cols.slice(1).map((c) => c.padStart(14)).join('');
  const out = [
    `KV store/retrieve: ${o.tokens} tokens x ${o.numLayers} layers x ${o.numKvHeads} KV heads x ${o.headDim} head_dim, ${o.kvDtype}` +
      ` = ${(r.kvBytes / GB).toFixed(4)} GB per prompt, ${r.chunks} chunks of ${o.chunkSize} tokens`,
    o.kvCache === 'fake'
      ? `KV cache: HostKvCache (JS memcpy per run of consecutive ${o.blockSize}-token blocks; the engine's native gather/scatter is not used)`
      : `KV cache: the engine's native KV cache on ${o.device ?? 'cpu'}, kvGather/kvScatter (${o.device && o.device !== 'cpu' ? 'page-locked pool pages and floor buffer' : `${o.threads || 'all'} CPU threads`}; block size ${o.blockSize})`,
    `single-thread memcpy: ${r.memcpyGBs.toFixed(2)} GB/s (${r.memcpyMethod}; best of readings taken before each row)`,
    `best of ${o.iters} runs after 1 warm-up; tiers sized for ~1.2 prompts (steady-state LRU churn)`,
    `'gather/scatter only' = the KV cache copying into/out of one buffer, no tier: the floor of every path`,
    `ratio = GB/s / memcpy GB/s; vs copy = GB/s / 'gather/scatter only' GB/s (what the tier itself costs)`,
    line(['path', 'store GB/s', 'ratio', 'vs copy', 'retrieve GB/s', 'ratio', 'vs copy']),
    ...r.rows.map((x) =>
      line([
        x.path,
        x.storeGBs.toFixed(2),
        x.storeRatio.toFixed(2),
        (x.storeGBs / bare.storeGBs).toFixed(2),
        x.retrieveGBs.toFixed(2),
        x.retrieveRatio.toFixed(2),
        (x.retrieveGBs / bare.retrieveGBs).toFixed(2),
      ]),
    ),
    `goal: ratio >= 0.70 for local_cpu and kv-server shm (tcp: loopback socket copies, no goal)`,
  ];
  return out.join('\n');
}
