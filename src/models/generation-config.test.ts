import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeSamplingDefaults, resolveSamplingDefaults, samplingDefaultsFrom } from './generation-config.js';

test('generation_config.json fields vLLM takes become sampling defaults; others are ignored', () => {
  const qwen3 = { bos_token_id: 1, do_sample: true, eos_token_id: [2], temperature: 0.6, top_k: 20, top_p: 0.95, max_new_tokens: 99, min_p: 'x' };
  assert.deepEqual(samplingDefaultsFrom(qwen3), { temperature: 0.6, topK: 20, topP: 0.95, maxTokens: 99 });
  assert.deepEqual(samplingDefaultsFrom({ repetition_penalty: 1.1, min_p: 0.05 }), { repetitionPenalty: 1.1, minP: 0.05 });
  assert.match(describeSamplingDefaults({ temperature: 0.6, topK: 20 })!, /\{temperature=0\.6, top_k=20\}.*--generation-config vllm/);
  assert.equal(describeSamplingDefaults({}), null);
});

test('--generation-config: auto = the model, vllm = none, DIR = that folder, else a clear error', () => {
  const model = { temperature: 0.6 };
  assert.deepEqual(resolveSamplingDefaults('auto', model), { temperature: 0.6 });
  assert.deepEqual(resolveSamplingDefaults('vllm', model), {});
  const dir = mkdtempSync(join(tmpdir(), 'pds-gen-'));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ top_k: 1 }));
  assert.deepEqual(resolveSamplingDefaults(dir, model), { topK: 1 });
  assert.throws(() => resolveSamplingDefaults(join(dir, 'nope'), model), /auto, vllm or a directory/);
});
