// `pdserve bench compare --a URL --b URL`: one seeded workload against two servers (e.g. disaggregated
// vs colocated), side-by-side results and an HTML report.
import type { Command } from 'commander';
import { parseReport, parseTarget, parseWorkload, type BenchConfig } from '../bench/config.js';
import { addReportOptions, addTargetModelOptions, addWorkloadOptions } from '../bench/cli-options.js';
import { runCli } from '../bench/cli-run.js';
import { applyPreset } from '../bench/presets.js';
import { benchCompare } from '../bench/compare-run.js';

export function registerBenchCompare(bench: Command): void {
  const cmd = bench
    .command('compare')
    .description('run the same seeded workload against two servers and compare them side by side')
    .requiredOption('--a <url>', 'base URL of server A')
    .requiredOption('--b <url>', 'base URL of server B')
    .option('--label-a <label>', 'name of A in tables and plots', 'A')
    .option('--label-b <label>', 'name of B in tables and plots', 'B')
    .option('--report <file.html>', 'write a self-contained HTML report with plots of both runs');
  addTargetModelOptions(cmd);
  addWorkloadOptions(cmd);
  addReportOptions(cmd);
  cmd.action((raw: Record<string, unknown>) =>
    runCli(async (stop) => {
      const opts = applyPreset(raw, raw.preset as string | undefined, (k) => cmd.getOptionValueSource(k));
      const common = { ...parseWorkload(opts), ...parseReport(opts) };
      const a: BenchConfig = { ...common, ...parseTarget(opts, String(opts.a)) };
      const b: BenchConfig = { ...common, ...parseTarget(opts, String(opts.b)) };
      return benchCompare({ a, b, labelA: String(opts.labelA), labelB: String(opts.labelB), reportPath: (opts.report as string | undefined) ?? null },
        (l) => process.stdout.write(l + '\n'), stop);
    }));
}
