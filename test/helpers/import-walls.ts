// The import walls of the tree, checked at the text level (no TypeScript resolution needed).
// Rules (paths relative to the repo root, '/' separators):
//   1. production code = a file under src/ that is not *.test.ts and not inside a testing/ folder; it
//      imports nothing under test/ and nothing inside a testing/ folder (tests and test helpers may);
//   2. src/engine/ imports nothing of src/kv/, src/server/, src/proxy/, src/gateway/, src/router/, src/bench/;
//   3. src/proxy/, src/gateway/ and src/router/ import nothing of src/engine/ or src/native/;
//   4. the KV storage tiers (src/kv/tiers/) import nothing of src/engine/ (they see the device through
//      tier.ts's HostMemoryRegistrar, not the engine's KvCacheAccess).
// Specifiers seen: `import ... from '...'`, `export ... from '...'`, `import '...'`, `import('...')`;
// only relative ones ('./', '../') can cross a wall (packages are not part of the tree).
import { posix } from 'node:path';

export interface SourceFile {
  path: string; // repo-relative, e.g. 'src/engine/llm-engine.ts'
  text: string;
}

export interface WallBreach {
  file: string;
  target: string; // repo-relative path the import resolves to
  rule: string;
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])([^'"\n]+)\1/gm;

export function importTargets(file: SourceFile): string[] {
  const out: string[] = [];
  const text = file.text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of text.matchAll(SPECIFIER)) {
    const spec = m[2]!;
    if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
    out.push(posix.normalize(posix.join(posix.dirname(file.path), spec)));
  }
  return out;
}

const isTest = (p: string) => p.endsWith('.test.ts');
const inTesting = (p: string) => p.split('/').includes('testing');
const under = (p: string, dir: string) => p.startsWith(dir + '/');

export function findWallBreaches(files: SourceFile[]): WallBreach[] {
  const out: WallBreach[] = [];
  for (const f of files) {
    if (!under(f.path, 'src')) continue;
    const production = !isTest(f.path) && !inTesting(f.path);
    for (const t of importTargets(f)) {
      if (production && (under(t, 'test') || inTesting(t))) out.push({ file: f.path, target: t, rule: 'production code imports test code' });
      if (production && under(f.path, 'src/engine'))
        for (const d of ['src/kv', 'src/server', 'src/proxy', 'src/gateway', 'src/router', 'src/bench'])
          if (under(t, d)) out.push({ file: f.path, target: t, rule: `src/engine imports ${d}` });
      if (under(f.path, 'src/proxy') || under(f.path, 'src/gateway') || under(f.path, 'src/router'))
        for (const d of ['src/engine', 'src/native'])
          if (under(t, d)) out.push({ file: f.path, target: t, rule: `${f.path.split('/').slice(0, 2).join('/')} imports ${d}` });
      if (production && under(f.path, 'src/kv/tiers') && under(t, 'src/engine')) out.push({ file: f.path, target: t, rule: 'src/kv/tiers imports src/engine' });
    }
  }
  return out;
}
