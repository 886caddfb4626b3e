// The accuracy floor the bf16 KV cache alone sets: every fixture model on the CPU backend with bf16 weights
// (exact: the checkpoints are bf16), f32 activations and a bf16 KV cache, teacher-forced on the reference
// greedy tokens. Prints, per model, the last-prompt top16 max |logit - ref| and the mismatches at steps whose
// reference margin > 0.05 (the CUDA bf16 acceptance rule), to compare with native/cuda/tests --models.
//   node scripts/device/lib/cpu-bf16-kv-floor.mjs [FIXTURES_DIR]     (after `node scripts/build.mjs`)
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { loadModel } from '../../../dist/src/engine/loader/load-model.js';
import { argmax, ContiguousRunner } from '../../../dist/src/native/testing/contiguous-runner.js';

const fixtures = process.argv[2] ?? process.env.PDSERVE_FIXTURES ?? '/work/shared/fixtures';
const blockSize = 16;
for (const name of ['stories260K', 'llama3-tiny', 'qwen2-tiny', 'qwen3-tiny']) {
  const dir = join(fixtures, 'models', name);
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const { model, config } = await loadModel({ dir, weights: 'safetensors' });
  const vocab = config.spec.vocabSize;
  let maxTop = 0, checked = 0, bad = 0;
  try {
    const maxLen = Math.max(...ref.cases.map((c) => c.prompt.length + c.greedy.length));
    const blocks = Math.ceil(maxLen / blockSize) + 1;
    model.allocKvCache(blocks, blockSize, 'bf16');
    for (const c of ref.cases) {
      const runner = new ContiguousRunner(model, vocab, blockSize, blocks);
      let logits = await runner.append(c.prompt);
      const top = c.last_logits_top16;
      for (let i = 0; i < top.ids.length; i++) maxTop = Math.max(maxTop, Math.abs(logits[top.ids[i]] - top.values[i]));
      for (let s = 0; s < c.greedy.length; s++) {
        if (c.greedy_margins[s] > 0.05) { checked++; if (argmax(logits) !== c.greedy[s]) bad++; }
        if (s + 1 < c.greedy.length) logits = await runner.append([c.greedy[s]]);
      }
    }
  } finally {
    model.dispose();
  }
  console.log(`${name} cpu bf16-weights bf16-KV f32-activations: prefill top16 max |logit - ref| ${maxTop.toExponential(2)}; ` +
    `greedy mismatches at margin > 0.05: ${bad}/${checked}`);
}
