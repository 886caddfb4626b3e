import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chainHash, chunkKeys, modelFingerprint, type ModelIdentity } from './chunk-hash.js';

const qwen: ModelIdentity = { name: 'Qwen/Qwen3-0.6B', architecture: 'Qwen3ForCausalLM', dtype: 'bf16', numLayers: 28, numKvHeads: 8, headDim: 128, kvDtype: 'bf16' };

describe('chunk keys', () => {
  // Pinned values: if the algorithm changes, these change, and stores written by older versions stop matching.
  it('chainHash is pinned', () => {
    assert.equal(chainHash(null, []).toString('hex'), PIN_EMPTY);
    assert.equal(chainHash(null, [1, 2, 3]).toString('hex'), PIN_123);
    assert.equal(chainHash(chainHash(null, [1, 2, 3]), [4], 'x').toString('hex'), PIN_CHAIN);
  });

  it('model fingerprint and chunk keys are pinned', () => {
    const root = modelFingerprint(qwen);
    assert.equal(root.toString('hex'), PIN_ROOT);
    const tokens = Array.from({ length: 10 }, (_, i) => i * 1000);
    const keys = chunkKeys(root, tokens, 4, true);
    assert.deepEqual(keys.map((k) => [k.start, k.end]), [[0, 4], [4, 8], [8, 10]]);
    assert.deepEqual(keys.map((k) => k.key), PIN_KEYS);
    assert.deepEqual(chunkKeys(root, tokens, 4, false).map((k) => k.key), PIN_KEYS.slice(0, 2));
  });

  it('keys depend on the model identity and on every token; typed arrays hash like arrays', () => {
    const tokens = [5, 6, 7, 8];
    const a = chunkKeys(modelFingerprint(qwen), tokens, 4, false)[0]!.key;
    assert.notEqual(chunkKeys(modelFingerprint({ ...qwen, kvDtype: 'f32' }), tokens, 4, false)[0]!.key, a);
    assert.notEqual(chunkKeys(modelFingerprint({ ...qwen, numLayers: 27 }), tokens, 4, false)[0]!.key, a);
    assert.notEqual(chunkKeys(modelFingerprint(qwen), [5, 6, 7, 9], 4, false)[0]!.key, a);
    assert.equal(chunkKeys(modelFingerprint(qwen), Int32Array.from(tokens), 4, false)[0]!.key, a);
    assert.throws(() => chainHash(null, [1.5]), RangeError);
    assert.throws(() => chainHash(null, [-1]), RangeError);
  });
});

// Computed independently (Python hashlib) from the algorithm in chunk-hash.ts's header.
const PIN_EMPTY = '40255b7898c27d15fffe2c44d50fcd2e31b2dee6f9640ca829e7e03fd44fbb66';
const PIN_123 = '78caf3dc3ae4c3f974f90f1971468a0182a26f0c2cd1cfb482e6bfada5e42f03';
const PIN_CHAIN = 'ff461271e68a2699ef36708f6fe2ee3054af48b282670ed8693fdbb6d777d0d7';
const PIN_ROOT = '54b471b7de4638bbc76a5c47543109ff524ab23623b0f0a4804e266ff6147fbc';
const PIN_KEYS = [
  'ce7ae691abe696c2c8a8a8c2388899ecbc6a4d12085ca836bc0cff7e8604ff3a',
  '74905cd7523adb4b010fd87bc26dadf75442dbe848cd31b5cfd6d85ef1887be1',
  'e9c41a7687f4188c24236b1e1ce699a30f0a6b0390bb1a73332d0f72640625f0',
];
