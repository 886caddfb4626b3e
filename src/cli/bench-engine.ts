// `pdserve bench engine --model <dir|card> [--load-format dummy|safetensors] [--threads N] [--json]`
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readJsonObject } from '../util/json-file.js';
import { join, resolve } from 'node:path';
import { formatEngineBench, runEngineBench } from '../perf/engine-bench.js';
import { DTYPES, isDType, type DType } from '../util/dtype.js';
import { resolveModel } from '../models/resolve.js';
import { intFlag } from './flags.js';

/** Commander's parsed flags (all strings except --json). */
interface BenchEngineFlags {
  model: string;
  loadFormat: string;
  device: string;
  threads: string;
  weightDtype?: string;
  kvDtype?: string;
  promptLen: string;
  decodeCtx: string;
  batches: string;
  probeMb: string;
  json?: boolean;
}

function dtypeFlag(v: string | undefined, flag: string): DType | undefined {
  if (v !== undefined && !isDType(v)) throw new Error(`${flag} must be one of ${DTYPES.join(', ')}, got '${v}'`);
  return v;
}

async function modelDir(arg: string, weights: 'safetensors' | 'dummy'): Promise<string> {
  try {
    return (await resolveModel(arg, { loadFormat: weights })).dir;
  } catch (e) {
    throw new Error(`model '${arg}' is neither a directory with config.json nor a built-in card: ${(e as Error).message}`);
  }
}

async function benchEngine(o: BenchEngineFlags): Promise<void> {
  const weights = o.loadFormat === 'dummy' ? 'dummy' : o.loadFormat === 'safetensors' || o.loadFormat === 'auto' ? 'safetensors' : null;
  if (!weights) throw new Error(`--load-format must be safetensors or dummy, got '${o.loadFormat}'`);
  // a checkpoint dir needs only config.json here (no tokenizer); anything else resolves as `serve` does
  const dir = existsSync(join(o.model, 'config.json')) ? resolve(o.model) : await modelDir(o.model, weights);
  const result = await runEngineBench(
    {
      dir,
      config: readJsonObject(join(dir, 'config.json')),
      weights,
      device: o.device,
      threads: intFlag('--threads', o.threads, 0),
      weightDtype: dtypeFlag(o.weightDtype, '--weight-dtype'),
      kvDtype: dtypeFlag(o.kvDtype, '--kv-dtype'),
      promptLen: intFlag('--prompt-len', o.promptLen, 1),
      decodeCtx: intFlag('--decode-ctx', o.decodeCtx, 0),
      decodeBatches: o.batches.split(',').map((b) => intFlag('--batches', b, 1)),
      probeBytes: intFlag('--probe-mb', o.probeMb, 1) * 2 ** 20,
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
    .option('--kv-dtype <dtype>', 'f32 | f16 | bf16 (default: f32 on cpu, the weight dtype on a GPU; f32 with bf16 weights on a GPU = f32 compute)')
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
