import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { addReportOptions, addTargetModelOptions, addWorkloadOptions } from './cli-options.js';
import { parseWorkload } from './config.js';
import { applyPreset, presetNames } from './presets.js';

function workload(argv: string[]) {
  const cmd = new Command('serve').exitOverride();
  addTargetModelOptions(cmd);
  addWorkloadOptions(cmd);
  addReportOptions(cmd);
  cmd.parse(argv, { from: 'user' });
  const raw = cmd.opts();
  return parseWorkload(applyPreset(raw, raw.preset as string | undefined, (k) => cmd.getOptionValueSource(k)));
}

test("the seeds' workloads by name", () => {
  assert.deepEqual(presetNames, ['llama8b-7500-200', 'llama8b-5000-200', 'qwen4b-128-128']);
  const long = workload(['--preset', 'llama8b-7500-200']);
  assert.deepEqual([long.datasetName, long.randomInputLen, long.randomOutputLen, long.numPrompts, long.burstiness, long.requestRate, long.ignoreEos],
    ['random', 7500, 200, 30, 100, 1, true]);
  const mid = workload(['--preset', 'llama8b-5000-200']);
  assert.deepEqual([mid.randomInputLen, mid.randomOutputLen, mid.burstiness], [5000, 200, 100]);
  const short = workload(['--preset', 'qwen4b-128-128']);
  assert.deepEqual([short.randomInputLen, short.randomOutputLen, short.numPrompts, short.maxConcurrency, short.requestRate], [128, 128, 1000, 100, Infinity]);
});

test('explicit flags override the preset, whatever their position; no preset changes nothing', () => {
  const w = workload(['--num-prompts', '1000', '--preset', 'llama8b-7500-200', '--request-rate', '4', '--random-output-len', '128']);
  assert.deepEqual([w.numPrompts, w.requestRate, w.randomOutputLen, w.randomInputLen], [1000, 4, 128, 7500]);
  // an explicit flag equal to the vLLM default still wins over the preset
  assert.equal(workload(['--preset', 'llama8b-7500-200', '--burstiness', '1']).burstiness, 1);
  assert.equal(workload([]).randomInputLen, 1024);
  assert.throws(() => workload(['--preset', 'llama-70b']), /unknown --preset 'llama-70b' \(known: llama8b-7500-200, /);
});
