// `pdserve bench serve`: vllm bench serve's options, metrics, result block and JSON.
import type { Command } from 'commander';
import { parseReport, parseTarget, parseWorkload, type BenchConfig } from '../bench/config.js';
import { addReportOptions, addTargetModelOptions, addWorkloadOptions } from '../bench/cli-options.js';
import { runCli } from '../bench/cli-run.js';
import { applyPreset } from '../bench/presets.js';
import { benchServe } from '../bench/serve-run.js';

export function registerBenchServe(bench: Command): void {
  const cmd = bench
    .command('serve')
    .description('benchmark a running OpenAI-compatible server (vllm bench serve compatible)')
    .option('--base-url <url>', 'server base URL (overrides --host/--port)')
    .option('--host <host>', 'server host', '127.0.0.1')
    .option('--port <port>', 'server port', '8000');
  addTargetModelOptions(cmd);
  addWorkloadOptions(cmd);
  addReportOptions(cmd);
  cmd.action((raw: Record<string, unknown>) =>
    runCli(async (stop) => {
      const opts = applyPreset(raw, raw.preset as string | undefined, (k) => cmd.getOptionValueSource(k));
      const cfg: BenchConfig = { ...parseWorkload(opts), ...parseReport(opts), ...parseTarget(opts) };
      return benchServe(cfg, (l) => process.stdout.write(l + '\n'), stop);
    }));
}
