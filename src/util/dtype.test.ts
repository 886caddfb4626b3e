// The one dtype module: names as flags and config.json write them, sizes, safetensors dtypes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dtypeBytes, dtypeFromName, dtypeFromSafetensors, parseDtypeOption, safetensorsDtypeBytes } from './dtype.js';

test('dtype names: every spelling the CLI and config.json use, case-insensitive, torch. prefix', () => {
  for (const n of ['f32', 'float32', 'float', 'FLOAT32', 'torch.float32']) assert.equal(dtypeFromName(n), 'f32', n);
  for (const n of ['f16', 'float16', 'half', 'torch.float16']) assert.equal(dtypeFromName(n), 'f16', n);
  for (const n of ['bf16', 'bfloat16', 'BFloat16', 'torch.bfloat16']) assert.equal(dtypeFromName(n), 'bf16', n);
  for (const n of ['', 'int8', 'float64', 'q4', 'auto']) assert.equal(dtypeFromName(n), null, n);
});

test('--dtype / --kv-cache-dtype accept auto and reject the rest with the accepted list', () => {
  assert.equal(parseDtypeOption('auto'), 'auto');
  assert.equal(parseDtypeOption('BFLOAT16'), 'bf16');
  assert.throws(() => parseDtypeOption('int4'), /unsupported dtype "int4" \(auto, float32, float16, bfloat16\)/);
});

test('sizes: native dtypes and the safetensors table agree; only F32/F16/BF16 load as weights', () => {
  assert.deepEqual(dtypeBytes, { f32: 4, f16: 2, bf16: 2 });
  for (const st of ['F32', 'F16', 'BF16']) assert.equal(safetensorsDtypeBytes[st], dtypeBytes[dtypeFromSafetensors(st)!]);
  for (const st of ['F64', 'I8', 'U8', 'BOOL', 'F8_E4M3']) {
    assert.ok(safetensorsDtypeBytes[st]! > 0, st);
    assert.equal(dtypeFromSafetensors(st), null, st);
  }
});
