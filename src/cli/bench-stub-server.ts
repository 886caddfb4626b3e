// Hidden helper: `pdserve bench stub-server` runs the scripted streaming stub (src/bench/stub-server.ts)
// so the bench client can be measured against a server that costs nothing.
import { Command } from 'commander';
import { startStubServer } from '../bench/stub-server.js';

function msList(v: string | boolean | undefined): number[] | undefined {
  if (typeof v !== 'string') return undefined;
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !(x >= 0))) throw new Error(`expected a comma list of milliseconds, got '${v}'`);
  return xs;
}

export function registerBenchStubServer(bench: Command): void {
  bench.addCommand(
    new Command('stub-server')
      .description('scripted OpenAI streaming stub for benchmarking the bench client')
      .option('--host <host>', 'host', '127.0.0.1')
      .option('--port <port>', 'port (0: any free port)', '0')
      .option('--model <name>', 'model name to report', 'stub-model')
      .option('--ttft-ms <ms>', 'delay before the first token', '0')
      .option('--itl-ms <ms>', 'delay between tokens', '0')
      .option('--fail-every <k>', 'answer every k-th request with HTTP 500 (0: never)', '0')
      .option('--drop-every <k>', 'destroy the connection of every k-th request after its first token (0: never)', '0')
      .option('--ttft-cycle-ms <list>', 'per-request TTFTs cycled in arrival order, e.g. 50,400 (overrides --ttft-ms)')
      .option('--itl-cycle-ms <list>', 'per-request ITLs cycled in arrival order (overrides --itl-ms)')
      .option('--prefill-ms <ms>', 'exclusive prefill time per request on one FIFO slot (TTFT grows with load)', '0')
      .option('--stamp', 'embed the send time (epoch ms) in every token chunk as "stub_ts"')
      .action(async (o: Record<string, string | boolean>) => {
        const stub = await startStubServer({
          model: String(o.model), ttftMs: Number(o.ttftMs), itlMs: Number(o.itlMs), failEvery: Number(o.failEvery), dropEvery: Number(o.dropEvery), stamp: !!o.stamp,
          ttftCycleMs: msList(o.ttftCycleMs), itlCycleMs: msList(o.itlCycleMs), prefillMs: Number(o.prefillMs),
        }, Number(o.port), String(o.host));
        process.stdout.write(`stub listening on ${stub.url}\n`);
        const stop = () => void stub.close().then(() => process.exit(0));
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      }),
    { hidden: true },
  );
}
