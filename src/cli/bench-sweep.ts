// `pdserve bench sweep`: one seeded workload at several request rates (or max concurrencies) against
// one or more named targets, with SLOs; per point the SLO attainment, P50/P99 TTFT and TPOT and
// throughput, per target DistServe's goodput and goodput per GPU; JSON plus an HTML report.
import type { Command } from 'commander';
import { parseReport, parseWorkload } from '../bench/config.js';
import { addReportOptions, addTargetModelOptions, addWorkloadOptions } from '../bench/cli-options.js';
import { runCli } from '../bench/cli-run.js';
import { applyPreset } from '../bench/presets.js';
import { dateStamp } from '../bench/result-json.js';
import { parseSweep } from '../bench/sweep-config.js';
import { loadSweep, mergeSweeps } from '../bench/sweep-merge.js';
import { benchSweep, writeSweepOutputs } from '../bench/sweep-run.js';
import { formatSweepSummary } from '../bench/sweep-summary.js';

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerBenchSweep(bench: Command): void {
  const cmd = bench
    .command('sweep')
    .description('SLO goodput sweep: one seeded workload at several request rates or concurrencies against named targets')
    .option('--target <name=url>', 'a server to sweep, e.g. A=http://127.0.0.1:9000 (repeatable; names label the report)', collect, [])
    .option('--request-rates <list>', 'request rates to sweep, e.g. 1,2,4 (req/s)')
    .option('--max-concurrencies <list>', 'max concurrencies to sweep instead, e.g. 25,50,100 (rate from --request-rate)')
    .option('--gpus <name=n,...>', 'GPUs each target uses, for goodput per GPU, e.g. A=2,B=2 (default 1 each; repeatable)', collect, [])
    .option('--slo-attainment <pct>', 'percent of requests that must meet every --goodput SLO (DistServe: 90)', '90')
    .option('--fresh-prompts', 'new prompts at each swept value (seed + its index; the same for every target), so prefix caches cannot carry one point into the next')
    .option('--report <file.html>', 'HTML report (default: beside the sweep JSON, .html)')
    .option('--from-results <files...>', 'no run: merge saved sweep JSONs (e.g. one per target) into one JSON/report');
  addTargetModelOptions(cmd);
  addWorkloadOptions(cmd);
  addReportOptions(cmd);
  cmd.addHelpText('after', `
The sweep JSON (sweep-<date>.json) is written with --result-dir, --save-result or --result-filename;
with --save-result and --result-dir each point's vLLM-style result JSON is saved too. Ctrl+C keeps
the finished points: the JSON and report are rewritten after every point.
Example (issue 14, long prompts): pdserve bench sweep --preset llama8b-7500-200 --request-rates 1,2,4 \\
  --goodput ttft:1000 tpot:25 --target A=http://127.0.0.1:9000 --target B=http://127.0.0.1:9001 \\
  --gpus A=2,B=2 --tokenizer llama-3.1-8b --result-dir sweep-out`);
  cmd.action((raw: Record<string, unknown>) =>
    runCli(async (stop) => {
      const print = (l: string) => process.stdout.write(l + '\n');
      const opts = applyPreset(raw, raw.preset as string | undefined, (k) => cmd.getOptionValueSource(k));
      const common = { ...parseWorkload(opts), ...parseReport(opts) };
      const from = opts.fromResults as string[] | undefined;
      if (from) {
        const merged = mergeSweeps(from.map(loadSweep));
        const dir = common.resultDir?.replace(/\/+$/, '');
        const at = (f: string) => (dir ? `${dir}/${f}` : f);
        const date = dateStamp();
        print(formatSweepSummary(merged).replace(/\n$/, ''));
        writeSweepOutputs(merged, {
          kind: merged.sweep, values: merged.values, targets: [], attainmentTarget: merged.slo_attainment_target,
          jsonPath: common.resultFilename ? at(common.resultFilename) : common.saveResult || dir ? at(`sweep-${date}.json`) : null,
          reportPath: (opts.report as string | undefined) ?? at(`sweep-${date}.html`),
        }, print);
        return 0;
      }
      const s = parseSweep(opts, common, dateStamp());
      return benchSweep(s, (opts.preset as string | undefined) ?? null, print, stop);
    }));
}
