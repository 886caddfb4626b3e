// `pdserve bench pd-ttft [MODEL] [--load-format dummy] [--prompt-len 4000]`: TTFT of a long prompt through
// 1P1D tcp push vs pull vs colocated, interleaved in one run (src/perf/pd-ttft.ts).
import type { Command } from 'commander';
import { formatPdTtft, runPdTtft } from '../perf/pd-ttft.js';

export function registerBenchPdTtft(bench: Command): void {
  bench
    .command('pd-ttft')
    .description('TTFT of a long prompt: 1P1D tcp push vs 1P1D tcp pull vs colocated, ratios from one run')
    .argument('[model]', 'model (default: stories260k, the built-in tiny story model; its context is 512)')
    .option('--load-format <fmt>', 'passed to the engines')
    .option('--prompt-len <n>', 'prompt tokens', '480')
    .option('--iters <n>', 'measurements per deployment', '5')
    .option('--vocab <n>', 'draw token ids below this', '500')
    .option('--max-num-batched-tokens <n>', 'every engine\'s chunked-prefill budget (push writes each chunk as it completes)', '512')
    .option('--kv-cache-memory <size>', 'KV pool of each engine', '512M')
    .option('--json', 'print JSON')
    .action(async (model: string | undefined, o) => {
      try {
        const r = await runPdTtft({
          model,
          loadFormat: o.loadFormat,
          promptLen: Number(o.promptLen),
          iters: Number(o.iters),
          vocab: Number(o.vocab),
          engineArgs: ['--kv-cache-memory', String(o.kvCacheMemory), '--max-num-batched-tokens', String(o.maxNumBatchedTokens)],
        });
        console.log(o.json ? JSON.stringify(r, null, 2) : formatPdTtft(r));
      } catch (e) {
        console.error(`pdserve bench pd-ttft: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
