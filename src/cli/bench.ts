// `pdserve bench <serve|compare|engine|kv>`: each subcommand lives in its own file.
import type { Command } from 'commander';
import { registerBenchKv } from './bench-kv.js';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks: serve, compare, engine, kv');
  registerBenchKv(bench);
}
