// `pdserve serve` on a broken model directory: a clear error naming the problem, non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath, fixturesOrSkip } from '../helpers/fixtures.js';

function serve(args: string[]) {
  const r = spawnSync(process.execPath, [cliPath, 'serve', ...args, '--port', '0'], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function copyModel(fx: string, model: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pdserve-bad-model-'));
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors'])
    copyFileSync(join(fx, 'models', model, f), join(dir, f));
  return dir;
}

test('serve: missing dir, missing config, unsupported architecture, corrupt safetensors -> clear error, exit != 0', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const missing = serve(['/no/such/model/dir']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.out, /no\/such\/model\/dir/);

  const noConfig = copyModel(fx, 'qwen2-tiny');
  writeFileSync(join(noConfig, 'config.json.bak'), '');
  const { rmSync } = await import('node:fs');
  rmSync(join(noConfig, 'config.json'));
  const r1 = serve([noConfig]);
  assert.notEqual(r1.code, 0);
  assert.match(r1.out, /config\.json/);

  const arch = copyModel(fx, 'qwen2-tiny');
  const cfg = JSON.parse(readFileSync(join(arch, 'config.json'), 'utf8'));
  cfg.architectures = ['GPTBigCodeForCausalLM'];
  writeFileSync(join(arch, 'config.json'), JSON.stringify(cfg));
  const r2 = serve([arch]);
  assert.notEqual(r2.code, 0);
  assert.match(r2.out, /GPTBigCodeForCausalLM/);
  assert.match(r2.out, /Qwen2ForCausalLM/, 'names the supported architectures');

  const corrupt = copyModel(fx, 'qwen2-tiny');
  const st = readFileSync(join(corrupt, 'model.safetensors'));
  st.writeBigUInt64LE(BigInt(st.length) * 4n, 0); // header length past the end of the file
  writeFileSync(join(corrupt, 'model.safetensors'), st);
  const r3 = serve([corrupt]);
  assert.notEqual(r3.code, 0);
  assert.match(r3.out, /model\.safetensors/);
  assert.match(r3.out, /header/i);
});
