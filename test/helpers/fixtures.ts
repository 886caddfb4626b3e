// Where the reference fixtures live (PDSERVE_FIXTURES, default ../shared/fixtures beside the repo).
// Tests that need them call fixturesOrSkip(t): absent fixtures skip the test with one visible line.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (works from test/helpers and from dist/test/helpers). */
export const repoRoot = existsSync(join(here, '../../package.json')) ? resolve(here, '../..') : resolve(here, '../../..');

export function fixturesDir(): string | null {
  const dir = resolve(process.env.PDSERVE_FIXTURES || join(repoRoot, '..', 'shared', 'fixtures'));
  return existsSync(join(dir, 'models')) ? dir : null;
}

let warned = false;
/** Returns the fixtures dir, or marks the test skipped (printing one line per process) and returns null. */
export function fixturesOrSkip(t: { skip: (msg?: string) => void }): string | null {
  const dir = fixturesDir();
  if (!dir) {
    if (!warned) {
      warned = true;
      console.log('# fixtures not found (set PDSERVE_FIXTURES): skipping fixture-based tests');
    }
    t.skip('fixtures not found');
  }
  return dir;
}

export const fixtureModels = ['stories260K', 'llama3-tiny', 'qwen2-tiny', 'qwen3-tiny'] as const;

export interface ReferenceCase {
  prompt: number[];
  greedy: number[];
  greedy_margins: number[];
  last_logits_top16: { ids: number[]; values: number[] };
  prompt_text?: string;
  greedy_text?: string;
}
export interface ModelReference {
  cases: ReferenceCase[];
  tokenizer_cases?: Array<{ text: string; ids: number[]; decoded: string }>;
}

export function readReference(fixtures: string, model: string): ModelReference {
  return JSON.parse(readFileSync(join(fixtures, 'models', model, 'reference.json'), 'utf8'));
}

/** Number of leading greedy steps that must match: up to (excluding) the first margin < 1e-3. */
export function comparableSteps(c: ReferenceCase, minMargin = 1e-3): number {
  const i = c.greedy_margins.findIndex((m) => m < minMargin);
  return i < 0 ? c.greedy.length : i;
}

/** Path of the compiled CLI entry (dist/src/cli/main.js). */
export const cliPath = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/**
 * Extra `pdserve serve` flags when the e2e tests run on a GPU host (PDSERVE_TEST_DEVICE=cuda):
 * f32 weights (the fixtures' tolerances are for fp32 compute) and a bounded KV pool so that several
 * engines share one GPU.
 */
export function deviceServeArgs(): string[] {
  const dev = process.env.PDSERVE_TEST_DEVICE;
  if (!dev) return [];
  const common = ['--dtype', 'float32', '--kv-cache-memory', '512M'];
  // with split GPUs, `pdserve up` places the engines (--prefill-devices/--decode-devices)
  return process.env.PDSERVE_TEST_SPLIT_GPUS ? common : ['--device', dev, ...common];
}

/**
 * `pdserve serve` flags for the bf16 rule (bf16 weights; greedy equal to the fp32 reference wherever its
 * margin > 0.05): on a GPU (PDSERVE_TEST_DEVICE) with an f32 KV cache, i.e. f32 compute over bf16 weights;
 * on the CPU the KV cache is f32 already.
 */
export function bf16ServeArgs(): string[] {
  const dev = process.env.PDSERVE_TEST_DEVICE;
  const kv = process.env.PDSERVE_TEST_KV_DTYPE; // e.g. bfloat16, to see what a bf16 KV cache does
  if (!dev) return ['--dtype', 'bfloat16', ...(kv ? ['--kv-cache-dtype', kv] : [])];
  return ['--device', dev, '--dtype', 'bfloat16', '--kv-cache-dtype', kv || 'float32', '--kv-cache-memory', '512M'];
}

/** `pdserve up` flags for PDSERVE_TEST_SPLIT_GPUS="P:D" (e.g. "0:1"): prefillers on GPU P, decoders on GPU D. */
export function upDeviceArgs(): string[] {
  const split = process.env.PDSERVE_TEST_SPLIT_GPUS;
  if (!split) return [];
  const [p, d] = split.split(':');
  return ['--device', 'cuda', '--prefill-devices', p!, '--decode-devices', d!];
}
