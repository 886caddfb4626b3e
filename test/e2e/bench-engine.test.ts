// `pdserve bench engine` as a real process: JSON output on a tiny dummy model, clear errors on bad flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath, fixturesOrSkip } from '../helpers/fixtures.js';

const run = promisify(execFile);
const config = {
  architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 96, num_attention_heads: 4, num_key_value_heads: 2,
  num_hidden_layers: 2, vocab_size: 200, rms_norm_eps: 1e-5, rope_theta: 10000, torch_dtype: 'float32', max_position_embeddings: 256,
};

test('pdserve bench engine --json on a dummy model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pds-bench-e2e-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const { stdout } = await run(process.execPath, [cliPath, 'bench', 'engine', '--model', dir, '--load-format', 'dummy', '--threads', '1',
      '--prompt-len', '24', '--batches', '1,2', '--decode-ctx', '8', '--probe-mb', '8', '--json']);
    const r = JSON.parse(stdout);
    assert.equal(r.prefill.tokens, 24);
    assert.deepEqual(r.decode.map((d: { batch: number }) => d.batch), [1, 2]);
    assert.ok(r.ratios.decodeVsBandwidthFloor > 0 && r.ratios.prefillVsMatmulPeak > 0);
    await assert.rejects(run(process.execPath, [cliPath, 'bench', 'engine', '--model', join(dir, 'nope'), '--load-format', 'dummy']),
      (e: { stderr: string }) => /neither a directory with config.json nor a built-in card/.test(e.stderr));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pdserve bench engine loads a real safetensors checkpoint (stories260K)', async (t) => {
  const fixtures = fixturesOrSkip(t);
  if (!fixtures) return;
  const { stdout } = await run(process.execPath, [cliPath, 'bench', 'engine', '--model', join(fixtures, 'models', 'stories260K'),
    '--threads', '1', '--prompt-len', '32', '--batches', '1', '--decode-ctx', '16', '--probe-mb', '8']);
  assert.match(stdout, /engine bench: .*stories260K \(5 layers, hidden 64, f32 weights/);
  assert.match(stdout, /decode batch  1 \(ctx 16\)/);
});
