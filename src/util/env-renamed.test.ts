// Old PDS_* names: detected from ENV_KNOBS, warned of once, and the real CLI prints the warning at startup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renamedEnvSet, warnRenamedEnv } from './env-renamed.js';
import { ENV_KNOBS } from './env-knobs.js';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

test('each renamed knob maps PDS_X to PDSERVE_X', () => {
  const renamed = ENV_KNOBS.filter((k) => k.renamedFrom);
  assert.ok(renamed.length >= 10, `${renamed.length} renamed`);
  for (const k of renamed) assert.equal(k.name, k.renamedFrom!.replace(/^PDS_/, 'PDSERVE_'), k.name);
});

test('renamedEnvSet finds set old names only (empty counts as unset)', () => {
  const env = { PDS_TRACE_STEPS: '1', PDS_CUDA_PDL: '', PDSERVE_TRACE_FORWARD: '1', PDS_ERR_CONFIG: 'x' };
  assert.deepEqual(renamedEnvSet(env), [{ old: 'PDS_TRACE_STEPS', now: 'PDSERVE_TRACE_STEPS' }]);
  assert.deepEqual(renamedEnvSet({}), []);
});

test('warnRenamedEnv warns once per process', () => {
  const lines: string[] = [];
  const env = { PDS_TRACE_STEPS: '1', PDS_CUBLAS_DIR: '/x' };
  assert.equal(warnRenamedEnv(env, (m) => lines.push(m)), 2);
  assert.equal(warnRenamedEnv(env, (m) => lines.push(m)), 0);
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /PDS_TRACE_STEPS is no longer read: it is now PDSERVE_TRACE_STEPS/);
  assert.match(lines[1]!, /PDS_CUBLAS_DIR .* PDSERVE_CUBLAS_DIR/);
});

test('the CLI warns at startup when an old name is set, and is silent otherwise', () => {
  const run = (extra: Record<string, string>) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
    for (const k of ENV_KNOBS) if (k.renamedFrom && !(k.renamedFrom in extra)) delete env[k.renamedFrom];
    const r = spawnSync(process.execPath, [main, '--version'], { env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const out = run({ PDS_OVERLAP_KV_SAVE: '1' });
  assert.match(out, /WARNING .*\[env\] PDS_OVERLAP_KV_SAVE is no longer read: it is now PDSERVE_OVERLAP_KV_SAVE/);
  assert.equal(out.match(/no longer read/g)!.length, 1);
  assert.doesNotMatch(run({}), /no longer read/);
});
