// bench engine on a tiny dummy model: every figure present, finite and consistent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatEngineBench, layerMatmulParams, prefillFlops, runEngineBench } from './engine-bench.js';
import { parseModelConfig } from '../engine/loader/model-config.js';

const config = {
  architectures: ['Qwen3ForCausalLM'], hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2,
  head_dim: 32, num_hidden_layers: 2, vocab_size: 300, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true,
  torch_dtype: 'bfloat16', max_position_embeddings: 1024,
};

test('prefill FLOPs count the matmuls, causal attention and one lm_head row', () => {
  const s = parseModelConfig(config).spec;
  const p = 2 * (64 * (128 + 128) + 128 * 64 + 3 * 64 * 128);
  assert.equal(layerMatmulParams(s), p);
  assert.equal(prefillFlops(s, 3), 2 * p * 3 + 4 * 2 * 4 * 32 * 6 + 2 * 64 * 300);
});

test('runEngineBench reports prefill, decode per batch and ratios', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pds-bench-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const r = await runEngineBench({ dir, weights: 'dummy', threads: 1, promptLen: 40, decodeBatches: [1, 3], decodeCtx: 20, decodeSteps: 2, probeBytes: 1 << 24 });
    assert.equal(r.prefill.tokens, 40);
    assert.deepEqual(r.decode.map((d) => d.batch), [1, 3]);
    for (const v of [r.prefill.tokensPerSec, r.machine.readBandwidthGBs, r.machine.memcpyGBs ?? NaN, r.machine.matmulPeakGflops,
      r.ratios.decodeVsBandwidthFloor, r.ratios.prefillVsMatmulPeak, ...r.decode.map((d) => d.msPerStep)])
      assert.ok(Number.isFinite(v) && v > 0, `figure ${v}`);
    // batched floor: weights once per step plus each sequence's KV (2 layers × K,V × 2 kv heads × 32 × f32 per position)
    const kvPerPos = 2 * 2 * 2 * 32 * 4;
    assert.equal(r.decode[0].bytesPerStep, r.model.weightBytes + 20 * kvPerPos);
    assert.equal(r.decode[1].bytesPerStep, r.model.weightBytes + 3 * 20 * kvPerPos);
    for (const d of r.decode)
      assert.ok(Math.abs(d.vsFloor - d.bytesPerStep / (r.machine.readBandwidthGBs * 1e9) / (d.msPerStep / 1e3)) < 1e-9 * d.vsFloor);
    assert.equal(r.ratios.decodeVsBandwidthFloor, r.decode[0].vsFloor);
    assert.equal(r.model.weightDtype, 'bf16');
    assert.equal(r.machine.source, 'host'); // cpu: the host's probes
    assert.match(formatEngineBench(r, 'tiny'), /prefill 40 tokens: .* tok\/s[\s\S]*decode batch  3 .* of the floor \(\d+ MB\/step[\s\S]*ratios: decode batch-1 vs bandwidth floor/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
