// `pdserve bench <serve|compare|engine|kv>`: each subcommand lives in its own file.
import type { Command } from 'commander';
import { registerBenchServe } from './bench-serve.js';
import { registerBenchStubServer } from './bench-stub-server.js';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks: serve, compare, engine, kv');
  registerBenchServe(bench);
  registerBenchStubServer(bench);
}
