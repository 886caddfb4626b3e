#!/usr/bin/env node
// Runs every compiled test (dist/**/*.test.js) with Node's test runner.
// Unit tests live beside their code (src/**/x.test.ts); end-to-end tests under test/e2e/.
// Args: optional path filters (substring match), e.g. `npm test -- tokenizer e2e/serve`.
// Env: PDSERVE_FIXTURES (default ../shared/fixtures) is where fixture-based tests look.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
let files = walk(join(root, 'dist')).sort();
if (filters.length) files = files.filter((f) => filters.some((flt) => relative(root, f).includes(flt)));
if (!files.length) { console.error('no test files matched'); process.exit(1); }
const args = ['--test', '--test-concurrency=' + (process.env.PDSERVE_TEST_CONCURRENCY || '2'), ...files];
const child = spawn(process.execPath, args, { stdio: 'inherit', cwd: root });
child.on('exit', (code, sig) => process.exit(code ?? (sig ? 1 : 0)));
