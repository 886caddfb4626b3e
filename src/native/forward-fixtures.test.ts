// Forward pass vs the Hugging Face fixtures (fp32 reference): last-position top-16 logits within 1e-3 and
// greedy decoding identical up to the first near-tie, for every fixture model, f32 weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { comparableSteps, fixtureModels, fixturesOrSkip, readReference, type ReferenceCase } from '../../test/helpers/fixtures.js';
import { loadModel } from '../engine/loader/load-model.js';
import type { DType, NativeModel } from './binding.js';
import { argmax, ContiguousRunner } from './testing/contiguous-runner.js';

const blockSize = 16;

async function checkCase(model: NativeModel, vocab: number, c: ReferenceCase, label: string, chunks = 1): Promise<void> {
  const total = c.prompt.length + c.greedy.length;
  const runner = new ContiguousRunner(model, vocab, blockSize, Math.ceil(total / blockSize) + 1);
  let logits: Float32Array | undefined;
  const per = Math.ceil(c.prompt.length / chunks);
  for (let i = 0; i < c.prompt.length; i += per) logits = await runner.append(c.prompt.slice(i, i + per));
  const top = c.last_logits_top16;
  for (let i = 0; i < top.ids.length; i++) {
    const got = logits![top.ids[i]];
    assert.ok(Math.abs(got - top.values[i]) < 1e-3, `${label}: logit[${top.ids[i]}] = ${got}, expected ${top.values[i]}`);
  }
  const steps = comparableSteps(c);
  for (let s = 0; s < steps; s++) {
    const tok = argmax(logits!);
    assert.equal(tok, c.greedy[s], `${label}: greedy step ${s}`);
    if (s + 1 < steps) logits = await runner.append([tok]);
  }
}

async function open(fixtures: string, name: string, kvDtype: DType = 'f32') {
  const { model, config } = await loadModel({ dir: join(fixtures, 'models', name), weights: 'safetensors', weightDtype: 'f32' });
  model.allocKvCache(64, blockSize, kvDtype);
  return { model, vocab: config.spec.vocabSize };
}

for (const name of fixtureModels) {
  test(`forward matches HF fixtures: ${name}`, async (t) => {
    const fixtures = fixturesOrSkip(t);
    if (!fixtures) return;
    const { model, vocab } = await open(fixtures, name);
    try {
      const ref = readReference(fixtures, name);
      for (const [i, c] of ref.cases.entries()) await checkCase(model, vocab, c, `${name} case ${i} (prompt ${c.prompt.length})`);
    } finally {
      model.dispose();
    }
  });
}

test('chunked prefill (2 chunks) with bf16 KV equals one-shot prefill and stays near the fixture', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const name = 'qwen3-tiny';
  const { model, vocab } = await open(fixtures, name, 'bf16');
  try {
    const c = readReference(fixtures, name).cases.find((x) => x.prompt.length === 255)!;
    const maxBlocks = Math.ceil((c.prompt.length + 8) / blockSize) + 1;
    // Two sequences in disjoint block ranges of the same cache: one-shot, and two chunks.
    const whole = new ContiguousRunner(model, vocab, blockSize, maxBlocks);
    const a = await whole.append(c.prompt);
    const chunked = new ContiguousRunner(model, vocab, blockSize, maxBlocks, maxBlocks);
    const half = Math.ceil(c.prompt.length / 2);
    await chunked.append(c.prompt.slice(0, half));
    let b = await chunked.append(c.prompt.slice(half));
    for (let i = 0; i < vocab; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-4, `chunked vs one-shot logit[${i}]: ${b[i]} vs ${a[i]}`);
    // bf16 rounding of K/V moves these random-weight logits by a few 1e-2 at most.
    const top = c.last_logits_top16;
    for (let i = 0; i < top.ids.length; i++)
      assert.ok(Math.abs(b[top.ids[i]] - top.values[i]) < 5e-2, `bf16 KV logit[${top.ids[i]}] = ${b[top.ids[i]]} vs ${top.values[i]}`);
    assert.equal(argmax(b), c.greedy[0]);
    let x = a;
    for (let s = 0; s < 8; s++) {
      const tok = argmax(b);
      assert.equal(tok, argmax(x), `greedy step ${s}: chunked and one-shot agree`);
      x = await whole.append([tok]);
      b = await chunked.append([tok]);
    }
  } finally {
    model.dispose();
  }
});

test('chunked prefill (2 chunks) with f32 KV matches within 1e-3', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const { model, vocab } = await open(fixtures, 'llama3-tiny');
  try {
    const c = readReference(fixtures, 'llama3-tiny').cases.find((x) => x.prompt.length === 257)!;
    await checkCase(model, vocab, c, 'llama3-tiny chunked', 2);
  } finally {
    model.dispose();
  }
});

test('bf16 weights (the checkpoint dtype, exact for these bf16 fixtures) match too', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  for (const name of ['qwen2-tiny', 'llama3-tiny']) {
    const { model, config } = await loadModel({ dir: join(fixtures, 'models', name), weights: 'safetensors' });
    try {
      assert.equal(config.spec.weightDtype, 'bf16');
      model.allocKvCache(64, blockSize, 'f32');
      const ref = readReference(fixtures, name);
      for (const [i, c] of ref.cases.slice(0, 4).entries()) await checkCase(model, config.spec.vocabSize, c, `${name} bf16 case ${i}`);
    } finally {
      model.dispose();
    }
  }
});
