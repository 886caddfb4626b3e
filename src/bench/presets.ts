// Named workloads (`--preset NAME`): the seeds' workloads, so a sweep or a run is one flag away from
// the figures the issues quote. A preset fills the workload options that were left at their defaults;
// any flag given on the command line wins (commander reports each option's value source).
import { PdsError } from '../util/errors.js';

/** Option key (commander's camelCase) -> value, as if typed on the command line. */
export type PresetValues = Readonly<Record<string, string>>;

export interface Preset {
  name: string;
  /** One line for --help. */
  summary: string;
  values: PresetValues;
}

export const presets: readonly Preset[] = [
  {
    name: 'llama8b-7500-200',
    summary: 'random 7500 in / 200 out, 30 prompts, burstiness 100, rate 1 (Llama-3.1-8B long prompts)',
    values: { datasetName: 'random', randomInputLen: '7500', randomOutputLen: '200', numPrompts: '30', burstiness: '100', requestRate: '1' },
  },
  {
    name: 'llama8b-5000-200',
    summary: 'random 5000 in / 200 out, 30 prompts, burstiness 100, rate 1 (Llama-3.1-8B)',
    values: { datasetName: 'random', randomInputLen: '5000', randomOutputLen: '200', numPrompts: '30', burstiness: '100', requestRate: '1' },
  },
  {
    name: 'qwen4b-128-128',
    summary: 'random 128 in / 128 out, 1000 prompts, max concurrency 100, all at once (Qwen3-4B)',
    values: { datasetName: 'random', randomInputLen: '128', randomOutputLen: '128', numPrompts: '1000', maxConcurrency: '100', requestRate: 'inf' },
  },
];

export const presetNames = presets.map((p) => p.name);

/** The --help text: one line per preset. */
export function presetHelp(): string {
  return 'named workload; explicit flags override it:\n' + presets.map((p) => `  ${p.name}: ${p.summary}`).join('\n');
}

/**
 * Returns a copy of `opts` with the preset's values for every key whose source is not the command
 * line (`sourceOf(key)` is commander's getOptionValueSource: 'cli' when the user typed it).
 * Throws PDS_ERR_CONFIG naming the known presets for an unknown name; `name` undefined = no preset.
 */
export function applyPreset(
  opts: Record<string, unknown>,
  name: string | undefined,
  sourceOf: (key: string) => string | undefined,
): Record<string, unknown> {
  if (name === undefined) return opts;
  const p = presets.find((x) => x.name === name);
  if (!p) throw new PdsError('PDS_ERR_CONFIG', `unknown --preset '${name}' (known: ${presetNames.join(', ')})`, '--preset');
  const out = { ...opts };
  for (const [k, v] of Object.entries(p.values)) {
    const src = sourceOf(k);
    if (src !== 'cli' && src !== 'env') out[k] = v;
  }
  return out;
}
