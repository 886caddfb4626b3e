// `pdserve bench kv [--tokens 7500] [--kv-dtype bf16] [--paths local_cpu,shm,tcp] [--iters 3] [--json]`
// KV store/retrieve GB/s per path, with ratios to memcpy measured in the same run (src/bench/kv-bench.ts).
import type { Command } from 'commander';
import { formatKvBench, runKvBench, type KvBenchOptions } from '../perf/kv-bench.js';
import { formatTcpBench, runTcpBench, type TcpBenchWhere } from '../kv/transport/tcp-bench.js';

import { intFlag as int } from './flags.js';
import { isDType } from '../util/dtype.js';

export function registerBenchKv(bench: Command): void {
  bench
    .command('kv')
    .description('KV store/retrieve GB/s: local CPU tier, kv-server shared memory, kv-server TCP (ratios to memcpy)')
    .option('--tokens <n>', 'prompt tokens', '7500')
    .option('--layers <n>', 'layers (Qwen3-0.6B: 28)', '28')
    .option('--kv-heads <n>', 'KV heads (Qwen3-0.6B: 8)', '8')
    .option('--head-dim <n>', 'head dim (Qwen3-0.6B: 128)', '128')
    .option('--kv-dtype <dtype>', 'f32 | f16 | bf16', 'bf16')
    .option('--chunk-size <n>', 'tokens per chunk', '256')
    .option('--block-size <n>', 'engine block size', '16')
    .option('--iters <n>', 'timed runs per figure', '3')
    .option('--paths <list>', 'comma list of local_cpu, shm, tcp', 'local_cpu,shm,tcp')
    .option('--kv-cache <kind>', "fake (JS stand-in) | native (the engine's KV cache and gather/scatter)", 'fake')
    .option('--threads <n>', 'CPU threads of the native KV cache (0 = all)', '0')
    .option('--device <device>', 'device of the native KV cache: cpu | cuda | cuda:N (implies --kv-cache native)', 'cpu')
    .option('--transport <name>', 'tcp: engine-to-engine KV over the tcp transport vs a raw TCP blast (instead of the kv-server paths)')
    .option('--shapes <list>', '--transport tcp: comma list of llama-3.1-8b, qwen3-0.6b', 'llama-3.1-8b,qwen3-0.6b')
    .option('--where <list>', '--transport tcp: comma list of loopback, netns (two network namespaces, needs root)', 'loopback,netns')
    .option('--connections <n>', '--transport tcp: connections per peer', '4')
    .option('--json', 'print JSON')
    .action(async (o) => {
      try {
        if (o.transport !== undefined) {
          if (o.transport !== 'tcp') throw new Error(`--transport must be tcp, got '${o.transport}'`);
          const where = String(o.where).split(',').map((s) => s.trim()).filter(Boolean);
          for (const w of where) if (w !== 'loopback' && w !== 'netns') throw new Error(`--where: unknown '${w}' (loopback, netns)`);
          const r = await runTcpBench({
            tokens: int('--tokens', o.tokens, 1),
            blockSize: int('--block-size', o.blockSize, 1),
            shapes: String(o.shapes).split(',').map((s) => s.trim()).filter(Boolean),
            where: where as TcpBenchWhere[],
            connections: int('--connections', o.connections, 1),
            iters: int('--iters', o.iters, 1),
            log: (l) => console.error(l),
          });
          console.log(o.json ? JSON.stringify(r, null, 2) : formatTcpBench(r));
          return;
        }
        if (!isDType(o.kvDtype)) throw new Error(`--kv-dtype must be f32, f16 or bf16, got '${o.kvDtype}'`);
        if (!['fake', 'native'].includes(o.kvCache)) throw new Error(`--kv-cache must be fake or native, got '${o.kvCache}'`);
        const paths = String(o.paths).split(',').map((s) => s.trim()).filter(Boolean);
        for (const p of paths) if (!['local_cpu', 'shm', 'tcp'].includes(p)) throw new Error(`--paths: unknown path '${p}' (local_cpu, shm, tcp)`);
        const opts: KvBenchOptions = {
          tokens: int('--tokens', o.tokens, 1),
          numLayers: int('--layers', o.layers, 1),
          numKvHeads: int('--kv-heads', o.kvHeads, 1),
          headDim: int('--head-dim', o.headDim, 1),
          kvDtype: o.kvDtype,
          chunkSize: int('--chunk-size', o.chunkSize, 1),
          blockSize: int('--block-size', o.blockSize, 1),
          iters: int('--iters', o.iters, 1),
          paths: paths as KvBenchOptions['paths'],
          kvCache: o.kvCache,
          threads: int('--threads', o.threads, 0),
          device: o.device,
        };
        if (opts.device !== 'cpu') opts.kvCache = 'native';
        if (opts.chunkSize % opts.blockSize) throw new Error('--chunk-size must be a multiple of --block-size');
        const r = await runKvBench(opts);
        console.log(o.json ? JSON.stringify(r, null, 2) : formatKvBench(r));
      } catch (e) {
        console.error(`pdserve bench kv: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
