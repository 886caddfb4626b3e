// resolveKvCacheConfig: dtype 'auto', the max-model-len cap, the budget per device, the block cap and the
// pool-too-small rules, without loading a model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEngineConfig, type EngineConfigInput } from './config.js';
import { resolveKvCacheConfig, type KvCacheModelFacts } from './kv-cache-config.js';

const GiB = 2 ** 30;
// Qwen3-0.6B's shape: 28 layers, 8 KV heads of 128
const facts = (o: Partial<KvCacheModelFacts> = {}): KvCacheModelFacts => ({
  numLayers: 28, numKvHeads: 8, headDim: 128, weightDtype: 'bf16', maxPositionEmbeddings: 40960, freeMemoryBytes: () => 64 * GiB, ...o,
});
const run = (c: EngineConfigInput, f = facts()) => {
  const warnings: string[] = [];
  const r = resolveKvCacheConfig(parseEngineConfig(c), f, (w) => warnings.push(w));
  return { ...r, warnings };
};

test('kv dtype auto: f32 on cpu, the weight dtype on a GPU; explicit wins', () => {
  assert.equal(run({ device: 'cpu' }).kvDtype, 'f32');
  assert.equal(run({ device: 'cuda' }).kvDtype, 'bf16');
  assert.equal(run({ device: 'cuda', kvCacheDtype: 'f32' }).kvDtype, 'f32');
  assert.equal(run({ device: 'cuda' }).bytesPerToken, 28 * 2 * 8 * 128 * 2);
});

test('budget: cpu min(4 GiB, fraction x free); GPU utilization x free; --kv-cache-memory exact, free memory not asked', () => {
  assert.equal(run({ device: 'cpu' }).budget, 4 * GiB);
  assert.equal(run({ device: 'cpu' }, facts({ freeMemoryBytes: () => 8 * GiB })).budget, 2 * GiB);
  assert.equal(run({ device: 'cuda' }).budget, 0.9 * 64 * GiB);
  const r = run({ device: 'cuda', kvCacheMemory: GiB, maxModelLen: 4096 }, facts({ freeMemoryBytes: () => assert.fail('asked for free memory') }));
  assert.equal(r.budget, GiB);
  assert.equal(r.numBlocks, Math.floor(GiB / (28 * 2 * 8 * 128 * 2 * 16)));
});

test('numBlocks without --kv-cache-memory: at most max(1024, what maxNumSeqs full sequences need + 1)', () => {
  const r = run({ device: 'cuda', maxNumSeqs: 2, maxModelLen: 1024 });
  assert.equal(r.numBlocks, 1024); // 2 x 64 + 1 < 1024
  assert.equal(run({ device: 'cuda', maxNumSeqs: 64, maxModelLen: 4096 }).numBlocks, 64 * 256 + 1);
});

test('max model len: capped at max_position_embeddings with a warning; a small pool shrinks it or fails', () => {
  const capped = run({ device: 'cuda', maxModelLen: 100_000 });
  assert.equal(capped.maxModelLen, 40960);
  assert.match(capped.warnings[0]!, /--max-model-len 100000 exceeds the model's max_position_embeddings 40960; using 40960/);
  const small = run({ device: 'cpu', kvCacheMemory: 64 * 2 ** 20 }); // 64 MiB: 18 blocks (288 tokens) of f32 KV
  assert.equal(small.numBlocks, 18);
  assert.equal(small.maxModelLen, 288);
  assert.ok(small.maxModelLen < 40960);
  assert.match(small.warnings[0]!, /holds \d+ tokens, less than the model's 40960: max model len set to/);
  assert.throws(() => run({ device: 'cpu', kvCacheMemory: 64 * 2 ** 20, maxModelLen: 8192 }), /fewer than one max-length sequence needs \(512\); raise --kv-cache-memory or lower --max-model-len/);
  assert.throws(() => run({ device: 'cpu', kvCacheMemory: 1024 }), /holds 0 blocks/);
});
