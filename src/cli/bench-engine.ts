// `pdserve bench engine --model <dir|card> [--load-format dummy|safetensors] [--threads N] [--json]`
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatEngineBench, runEngineBench } from '../bench/engine-bench.js';
import type { DType } from '../native/binding.js';

/** Commander's parsed flags (all strings except --json). */
interface BenchEngineFlags {
  model: string;
  loadFormat: string;
  device: string;
  threads: string;
  weightDtype?: string;
  kvDtype: string;
  promptLen: string;
  decodeCtx: string;
  batches: string;
  probeMb: string;
  json?: boolean;
}

/** A local HF directory (with config.json), or a built-in card: models/cards/<name>/ at the package root. */
export function resolveModelDir(arg: string): string {
  if (existsSync(join(arg, 'config.json'))) return resolve(arg);
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, d = dirname(d)) {
    const card = join(d, 'models', 'cards', arg);
    if (existsSync(join(card, 'config.json'))) return card;
  }
  throw new Error(`model '${arg}' is neither a directory with config.json nor a built-in card (models/cards/${arg})`);
}

const dtypes = ['f32', 'f16', 'bf16'];

function dtypeFlag(v: string | undefined, flag: string): DType | undefined {
  if (v !== undefined && !dtypes.includes(v)) throw new Error(`${flag} must be one of ${dtypes.join(', ')}, got '${v}'`);
  return v as DType | undefined;
}

function intFlag(v: string, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, got '${v}'`);
  return n;
}

async function benchEngine(o: BenchEngineFlags): Promise<void> {
  const dir = resolveModelDir(o.model);
  const weights = o.loadFormat === 'dummy' ? 'dummy' : o.loadFormat === 'safetensors' || o.loadFormat === 'auto' ? 'safetensors' : null;
  if (!weights) throw new Error(`--load-format must be safetensors or dummy, got '${o.loadFormat}'`);
  const result = await runEngineBench(
    {
      dir,
      config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>,
      weights,
      device: o.device,
      threads: intFlag(o.threads, '--threads', 0),
      weightDtype: dtypeFlag(o.weightDtype, '--weight-dtype'),
      kvDtype: dtypeFlag(o.kvDtype, '--kv-dtype'),
      promptLen: intFlag(o.promptLen, '--prompt-len', 1),
      decodeCtx: intFlag(o.decodeCtx, '--decode-ctx', 0),
      decodeBatches: o.batches.split(',').map((b) => intFlag(b, '--batches', 1)),
      probeBytes: intFlag(o.probeMb, '--probe-mb', 1) * 2 ** 20,
    },
    o.json ? undefined : (l) => process.stderr.write(l + '\n'),
  );
  process.stdout.write(o.json ? JSON.stringify(result, null, 2) + '\n' : formatEngineBench(result, o.model) + '\n');
}

export function registerBenchEngine(bench: Command): void {
  bench
    .command('engine')
    .description('native forward pass: prefill tok/s, decode ms/step, with measured bandwidth/peak ratios')
    .requiredOption('--model <model>', 'local HF model directory or built-in card name (e.g. qwen3-0.6b)')
    .option('--load-format <format>', 'safetensors | dummy (random weights)', 'safetensors')
    .option('--device <device>', 'cpu | cuda | cuda:N', 'cpu')
    .option('--threads <n>', 'CPU threads (0 = all cores)', '0')
    .option('--weight-dtype <dtype>', 'f32 | f16 | bf16 (default: checkpoint dtype)')
    .option('--kv-dtype <dtype>', 'f32 | f16 | bf16', 'f32')
    .option('--prompt-len <n>', 'prefill length', '512')
    .option('--decode-ctx <n>', 'cached positions per sequence during decode', '128')
    .option('--batches <list>', 'decode batch sizes', '1,8,32')
    .option('--probe-mb <n>', 'buffer size of the bandwidth probes in MiB', '512')
    .option('--json', 'print JSON')
    .action(async (o: BenchEngineFlags, cmd: Command) => {
      try {
        await benchEngine(o);
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`, { exitCode: 1 }); // a message, not a stack trace
      }
    });
}
