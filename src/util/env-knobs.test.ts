// The env-knob list is true: every variable production code reads is listed (env-knobs.ts), and every
// listed one is still read. The scanner is shown to catch each way of reading on made-up text first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_KNOBS } from './env-knobs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'); // dist/src/util -> repo

/** Env names read in `text`: process.env.X, env.X, env['X'], getenv("X"), envInt("X", ..), and
 * 'PDSERVE_/PDS_/VLLM_...' string constants (names handed to a reader; one ending in '_' is a prefix). */
export function envReads(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out = new Set<string>();
  const pats = [
    /\benv\.([A-Z][A-Z0-9_]+)/g,
    /\benv\[\s*['"]([A-Z][A-Z0-9_]+)['"]\s*\]/g,
    /\bgetenv\(\s*"([A-Z][A-Z0-9_]+)"\s*\)/g,
    /\benvInt\(\s*"([A-Z][A-Z0-9_]+)"/g,
    /['"]((?:PDSERVE|PDS|VLLM)_[A-Z0-9_]*)['"]/g,
  ];
  for (const p of pats) for (const m of code.matchAll(p)) if (!m[1]!.startsWith('PDS_ERR_')) out.add(m[1]!);
  return [...out].sort();
}

function files(dir: string, keep: (p: string) => boolean, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'testing' && e.name !== 'tests' && e.name !== 'node_modules') files(p, keep, out);
    } else if (keep(p)) out.push(p);
  }
  return out;
}

test('the scanner sees each way of reading an env variable', () => {
  const text = [
    "const a = process.env.PDSERVE_A === '1';",
    "const b = env.HF_B;",
    "const c = env['PDSERVE_C'];",
    'const char* d = std::getenv("PDS_D");',
    'int e = envInt("PDS_E", 1);',
    "export const F_ENV = 'PDSERVE_F';",
    "throw new PdsError('PDS_ERR_CONFIG', 'x');",
    '// process.env.PDSERVE_COMMENTED',
  ].join('\n');
  assert.deepEqual(envReads(text), ['HF_B', 'PDSERVE_A', 'PDSERVE_C', 'PDSERVE_F', 'PDS_D', 'PDS_E']);
});

test('every env variable production code reads is in ENV_KNOBS, and each listed one is read', () => {
  const prod = [
    ...files(join(root, 'src'), (p) => p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('env-knobs.ts')),
    ...files(join(root, 'native'), (p) => /\.(cc|cu|h|cuh)$/.test(p)),
    ...files(join(root, 'scripts'), (p) => p.endsWith('.mjs') && dirname(p) === join(root, 'scripts')),
  ];
  assert.ok(prod.length > 100, `scanned ${prod.length} files`);
  const listed = new Set(ENV_KNOBS.map((k) => k.name));
  assert.equal(listed.size, ENV_KNOBS.length, 'no knob listed twice');
  const isListed = (n: string) => listed.has(n) || [...listed].some((l) => l.endsWith('_') && n.startsWith(l) && n !== l.slice(0, -1));
  const seen = new Set<string>();
  const unlisted: string[] = [];
  for (const f of prod) {
    for (const n of envReads(readFileSync(f, 'utf8'))) {
      seen.add(n);
      if (!isListed(n)) unlisted.push(`${relative(root, f).split(sep).join('/')}: ${n}`);
    }
  }
  assert.deepEqual(unlisted, [], 'read but not listed in src/util/env-knobs.ts');
  assert.deepEqual([...listed].filter((n) => !seen.has(n)), [], 'listed but read nowhere');
  const old = ENV_KNOBS.flatMap((k) => (k.renamedFrom ? [k.renamedFrom] : []));
  assert.deepEqual([...seen].filter((n) => old.includes(n) || n.startsWith('PDS_')), [], 'an old PDS_ name is still read');
});

test('one prefix: every pdserve knob is PDSERVE_*; the rest are names other tools define', () => {
  const foreign = /^(HF_|HUGGING_FACE_|VLLM_API_KEY$|OPENAI_API_KEY$|LD_LIBRARY_PATH$)/;
  assert.deepEqual(ENV_KNOBS.filter((k) => !k.name.startsWith('PDSERVE_') && !foreign.test(k.name)).map((k) => k.name), []);
});
