// loadModel on small synthetic checkpoints: tied embeddings with and without a stored lm_head, missing weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from './load-model.js';
import { writeSafetensors } from '../testing/write-safetensors.js';

const H = 32, I = 48, V = 40, L = 1, heads = 4, kvHeads = 2, hd = 8;
const config = {
  architectures: ['LlamaForCausalLM'], hidden_size: H, intermediate_size: I, num_attention_heads: heads, num_key_value_heads: kvHeads,
  num_hidden_layers: L, vocab_size: V, rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'float32', max_position_embeddings: 64,
};

function weights(withLmHead: boolean) {
  let s = 1;
  const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 48271) + 11) >>> 0) / 2 ** 32 - 0.5) * 0.2);
  const t: Record<string, { shape: number[]; data: Float32Array }> = {
    'model.embed_tokens.weight': { shape: [V, H], data: rand(V * H) },
    'model.norm.weight': { shape: [H], data: new Float32Array(H).fill(1) },
    'model.layers.0.input_layernorm.weight': { shape: [H], data: new Float32Array(H).fill(1) },
    'model.layers.0.post_attention_layernorm.weight': { shape: [H], data: new Float32Array(H).fill(1) },
    'model.layers.0.self_attn.q_proj.weight': { shape: [heads * hd, H], data: rand(heads * hd * H) },
    'model.layers.0.self_attn.k_proj.weight': { shape: [kvHeads * hd, H], data: rand(kvHeads * hd * H) },
    'model.layers.0.self_attn.v_proj.weight': { shape: [kvHeads * hd, H], data: rand(kvHeads * hd * H) },
    'model.layers.0.self_attn.o_proj.weight': { shape: [H, heads * hd], data: rand(H * heads * hd) },
    'model.layers.0.self_attn.rotary_emb.inv_freq': { shape: [hd / 2], data: rand(hd / 2) },
    'model.layers.0.mlp.gate_proj.weight': { shape: [I, H], data: rand(I * H) },
    'model.layers.0.mlp.up_proj.weight': { shape: [I, H], data: rand(I * H) },
    'model.layers.0.mlp.down_proj.weight': { shape: [H, I], data: rand(H * I) },
  };
  if (withLmHead) t['lm_head.weight'] = { shape: [V, H], data: rand(V * H) };
  return t;
}

async function logits(dir: string) {
  const { model, config: c } = await loadModel({ dir, weights: 'safetensors' });
  try {
    model.allocKvCache(4, 16, 'f32');
    const out = await model.forward({ tokenIds: Int32Array.from([3, 5]), positions: Int32Array.from([0, 1]), slotMapping: Int32Array.from([0, 1]),
      queryStartLoc: Int32Array.from([0, 2]), contextLens: Int32Array.from([2]), blockTables: Int32Array.from([0]), maxBlocksPerSeq: 1,
      logitsIndices: Int32Array.from([1]) });
    return { out, tied: c.spec.tieWordEmbeddings };
  } finally {
    model.dispose();
  }
}

test('tied config ignores a stored lm_head; an absent lm_head means tied; untied uses it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pds-load-'));
  try {
    const mk = (name: string, cfg: object, withLm: boolean) => {
      const d = join(root, name);
      mkdirSync(d);
      writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
      writeSafetensors(join(d, 'model.safetensors'), weights(withLm));
      return d;
    };
    const tiedStored = await logits(mk('a', { ...config, tie_word_embeddings: true }, true));
    const tiedAbsent = await logits(mk('b', { ...config, tie_word_embeddings: false }, false));
    const untied = await logits(mk('c', { ...config, tie_word_embeddings: false }, true));
    assert.equal(tiedStored.tied, true);
    assert.equal(tiedAbsent.tied, true);
    assert.equal(untied.tied, false);
    assert.deepEqual(tiedStored.out, tiedAbsent.out);
    assert.notDeepEqual(untied.out, tiedAbsent.out);
    const bad = weights(false);
    delete bad['model.layers.0.mlp.up_proj.weight'];
    const d = join(root, 'd');
    mkdirSync(d);
    writeFileSync(join(d, 'config.json'), JSON.stringify(config));
    writeSafetensors(join(d, 'model.safetensors'), bad);
    await assert.rejects(loadModel({ dir: d, weights: 'safetensors' }), /missing weight 'model.layers.0.mlp.up_proj.weight'/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
