// config.json -> NativeModelSpec for the supported architectures and both rope config styles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesOrSkip, repoRoot } from '../../../test/helpers/fixtures.js';
import { parseModelConfig } from './model-config.js';

const base = {
  hidden_size: 64, intermediate_size: 128, num_attention_heads: 8, num_key_value_heads: 2, num_hidden_layers: 2,
  vocab_size: 100, rms_norm_eps: 1e-5, max_position_embeddings: 512, eos_token_id: [2, 3], bos_token_id: 1,
};

test('unknown architecture names it and lists the supported ones', () => {
  assert.throws(() => parseModelConfig({ ...base, architectures: ['GPT2LMHeadModel'] }),
    /unsupported model architecture 'GPT2LMHeadModel'; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM/);
  assert.throws(() => parseModelConfig({ ...base }), /no architectures/);
});

test('llama legacy rope_scaling llama3, untied by default, torch_dtype', () => {
  const c = parseModelConfig({ ...base, architectures: ['LlamaForCausalLM'], torch_dtype: 'bfloat16', rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
  assert.equal(c.spec.ropeType, 'llama3');
  assert.equal(c.spec.ropeTheta, 500000);
  assert.equal(c.spec.ropeFactor, 8);
  assert.equal(c.spec.ropeOriginalMaxPos, 8192);
  assert.equal(c.spec.tieWordEmbeddings, false);
  assert.equal(c.spec.headDim, 8);
  assert.equal(c.spec.weightDtype, 'bf16');
  assert.equal(c.spec.ropeFreqDtype, 'bf16');
  assert.deepEqual(c.eosTokenIds, [2, 3]);
});

test('qwen3 rope_parameters style, explicit head_dim, qk norm; weight dtype override', () => {
  const c = parseModelConfig({ ...base, architectures: ['Qwen3ForCausalLM'], head_dim: 32, dtype: 'bfloat16',
    rope_parameters: { rope_theta: 1000000, rope_type: 'default' }, tie_word_embeddings: true }, { weightDtype: 'f32' });
  assert.equal(c.spec.headDim, 32);
  assert.equal(c.spec.ropeTheta, 1000000);
  assert.equal(c.spec.qkNorm, true);
  assert.equal(c.spec.qkvBias, false);
  assert.equal(c.spec.weightDtype, 'f32');
  assert.equal(c.spec.ropeFreqDtype, 'bf16');
});

test('qwen2 has qkv bias; a checkpoint without lm_head forces tied embeddings', () => {
  const c = parseModelConfig({ ...base, architectures: ['Qwen2ForCausalLM'], tie_word_embeddings: false }, { hasLmHead: false });
  assert.equal(c.spec.qkvBias, true);
  assert.equal(c.spec.tieWordEmbeddings, true);
});

test('mistral sliding window caps the context; unsupported biases are refused', () => {
  const m = parseModelConfig({ ...base, architectures: ['MistralForCausalLM'], sliding_window: 256 });
  assert.equal(m.maxPositionEmbeddings, 256);
  const q = parseModelConfig({ ...base, architectures: ['Qwen2ForCausalLM'], sliding_window: 128, use_sliding_window: false });
  assert.equal(q.maxPositionEmbeddings, 512);
  assert.throws(() => parseModelConfig({ ...base, architectures: ['LlamaForCausalLM'], attention_bias: true }), /attention_bias/);
  assert.throws(() => parseModelConfig({ ...base, architectures: ['LlamaForCausalLM'], mlp_bias: true }), /mlp_bias/);
});

test('unsupported rope type and missing fields are clear errors', () => {
  assert.throws(() => parseModelConfig({ ...base, architectures: ['MistralForCausalLM'], rope_scaling: { rope_type: 'yarn', factor: 4 } }), /rope_type 'yarn'/);
  const { hidden_size: _h, ...noHidden } = base;
  assert.throws(() => parseModelConfig({ ...noHidden, architectures: ['LlamaForCausalLM'] }), /hidden_size/);
});

test('fixture configs and the qwen3-0.6b card parse', (t) => {
  const card = parseModelConfig(JSON.parse(readFileSync(join(repoRoot, 'models/cards/qwen3-0.6b/config.json'), 'utf8')));
  assert.equal(card.spec.numLayers, 28);
  assert.equal(card.spec.headDim, 128);
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const l3 = parseModelConfig(JSON.parse(readFileSync(join(fixtures, 'models/llama3-tiny/config.json'), 'utf8')));
  assert.equal(l3.spec.ropeType, 'llama3');
  assert.equal(l3.spec.ropeOriginalMaxPos, 1024);
});
