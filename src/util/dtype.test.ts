// The one dtype module: names as flags and config.json write them, sizes, safetensors dtypes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DTYPES, dtypeBytes, dtypeFromName, dtypeFromSafetensors, isDType, kvBytesPerToken, parseDtypeOption, safetensorsDtypeBytes } from './dtype.js';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src'); // dist/src/util -> repo/src

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

test('short names exactly; KV bytes per token from the one size table', () => {
  assert.deepEqual([...DTYPES], ['f32', 'f16', 'bf16']);
  for (const d of DTYPES) assert.ok(isDType(d), d);
  for (const v of ['F32', 'float16', 'bfloat16', '', 'auto', 2, undefined]) assert.equal(isDType(v), false, String(v));
  assert.equal(kvBytesPerToken(28, 8, 128, 'bf16'), 28 * 2 * 8 * 128 * 2); // Qwen3-0.6B: 114688
  assert.equal(kvBytesPerToken(2, 1, 4, 'f32'), 64);
});

test('no other production file repeats a dtype size table or the short-name list', () => {
  const offenders: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith(join('util', 'dtype.ts'))) {
        const code = readFileSync(p, 'utf8');
        if (/\b(f32|bf16|f16)\s*:\s*[248]\b/.test(code) || /\[\s*'f32',\s*'f16',\s*'bf16'\s*\]/.test(code)) offenders.push(relative(src, p));
      }
    }
  };
  walk(src);
  assert.deepEqual(offenders, [], 'use src/util/dtype.ts (dtypeBytes, DTYPES, isDType, kvBytesPerToken)');
});
