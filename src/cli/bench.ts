// `pdserve bench <serve|compare|sweep|engine|kv|decode-ttft|pd-ttft>`: each subcommand lives in its own file.
import type { Command } from 'commander';
import { registerBenchServe } from './bench-serve.js';
import { registerBenchCompare } from './bench-compare.js';
import { registerBenchSweep } from './bench-sweep.js';
import { registerBenchStubServer } from './bench-stub-server.js';
import { registerBenchEngine } from './bench-engine.js';
import { registerBenchKv } from './bench-kv.js';
import { registerBenchDecodeTtft } from './bench-decode-ttft.js';
import { registerBenchPdTtft } from './bench-pd-ttft.js';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks: serve, compare, sweep, engine, kv');
  registerBenchServe(bench);
  registerBenchCompare(bench);
  registerBenchSweep(bench);
  registerBenchStubServer(bench);
  registerBenchEngine(bench);
  registerBenchKv(bench);
  registerBenchDecodeTtft(bench);
  registerBenchPdTtft(bench);
}
