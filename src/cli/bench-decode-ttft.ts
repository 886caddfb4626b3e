// `pdserve bench decode-ttft [MODEL] [--load-format dummy] [--prompt-len 2048]`: decoder TTFT with the
// prompt's KV retrieved from the kv-server vs computed locally (src/perf/decode-ttft.ts).
import type { Command } from 'commander';
import { formatDecodeTtft, runDecodeTtft } from '../perf/decode-ttft.js';

export function registerBenchDecodeTtft(bench: Command): void {
  bench
    .command('decode-ttft')
    .description('decoder TTFT: KV retrieved from the kv-server vs computed locally')
    .argument('[model]', 'model (default: stories260k, the built-in tiny story model)')
    .option('--load-format <fmt>', 'passed to the engines')
    .option('--prompt-len <n>', 'prompt tokens', '2048')
    .option('--iters <n>', 'measurements per path', '3')
    .option('--vocab <n>', 'draw token ids below this', '2000')
    .option('--kv-cache-memory <size>', 'KV pool of each engine (small enough that warm-up touches most blocks: fresh memory is slow to fault in on VMs)', '1G')
    .option('--json', 'print JSON')
    .allowExcessArguments(true)
    .action(async (model: string | undefined, o) => {
      try {
        const r = await runDecodeTtft({ model, loadFormat: o.loadFormat, promptLen: Number(o.promptLen), iters: Number(o.iters), vocab: Number(o.vocab), engineArgs: ['--kv-cache-memory', String(o.kvCacheMemory)] });
        console.log(o.json ? JSON.stringify(r, null, 2) : formatDecodeTtft(r));
      } catch (e) {
        console.error(`pdserve bench decode-ttft: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
