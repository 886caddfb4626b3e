// The AVX2 kernels (used on hosts without AVX-512) pass the same kernel tests: ops.test.js re-run in a child
// process with PDSERVE_NO_AVX512=1 (the ISA choice is made once per process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative } from './binding.js';

test('kernel tests pass on the AVX2 path', (t) => {
  if (!loadNative().cpuFeatures().includes('avx512f')) return t.skip('no AVX-512 here: ops.test.js already runs the AVX2 path');
  const file = join(dirname(fileURLToPath(import.meta.url)), 'ops.test.js');
  const env: NodeJS.ProcessEnv = { ...process.env, PDSERVE_NO_AVX512: '1' };
  delete env.NODE_TEST_CONTEXT; // else the child reports to this runner instead of printing TAP
  const isa = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(join(dirname(file), 'binding.js'))}).then((m) => console.log(m.loadNative().ops.kernelIsa()))`], { env, encoding: 'utf8' });
  assert.equal(isa.stdout.trim(), 'avx2', isa.stderr);
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout.split('\n').filter((l) => /not ok|error/.test(l)).join('\n'));
  assert.match(r.stdout, /# fail 0/);
});
