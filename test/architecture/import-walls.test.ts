// The tree keeps its import walls (rules in test/helpers/import-walls.ts); the checker itself is shown
// to catch each kind of breach on small made-up files first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findWallBreaches, importTargets, type SourceFile } from '../helpers/import-walls.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'); // dist/test/architecture -> repo

function sources(dir: string, out: SourceFile[] = []): SourceFile[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (p.endsWith('.ts')) out.push({ path: relative(root, p).split(sep).join('/'), text: readFileSync(p, 'utf8') });
  }
  return out;
}

test('import specifiers: static, re-export, side-effect and dynamic; comments ignored', () => {
  const f: SourceFile = {
    path: 'src/a/b.ts',
    text: [
      "import { x } from '../kv/c.js';",
      "import type { Y } from './d.js';",
      "export { z } from '../../test/helpers/e.js';",
      "import './side.js';",
      "const m = await import('../native/binding.js');",
      "// import { no } from '../commented.js';",
      "import { pkg } from 'undici';",
    ].join('\n'),
  };
  assert.deepEqual(importTargets(f), ['src/kv/c.js', 'src/a/d.js', 'test/helpers/e.js', 'src/a/side.js', 'src/native/binding.js']);
});

test('each wall is enforced on made-up files', () => {
  const rules = (path: string, text: string) => findWallBreaches([{ path, text }]).map((b) => b.rule);
  assert.deepEqual(rules('src/server/x.ts', "import { h } from '../../test/helpers/fixtures.js';"), ['production code imports test code']);
  assert.deepEqual(rules('src/bench/x.ts', "import { F } from '../kv/testing/fake.js';"), ['production code imports test code']);
  assert.deepEqual(rules('src/bench/x.test.ts', "import { F } from '../kv/testing/fake.js';"), [], 'tests may use testing helpers');
  assert.deepEqual(rules('src/kv/testing/a.ts', "import { F } from './b.js';"), [], 'test helpers may use each other');
  assert.deepEqual(rules('src/engine/x.ts', "import { c } from '../kv/chunk-hash.js';"), ['src/engine imports src/kv']);
  assert.deepEqual(rules('src/engine/connector/x.ts', "import { s } from '../../server/api-server.js';"), ['src/engine imports src/server']);
  assert.deepEqual(rules('src/engine/x.ts', "import { p } from '../proxy/server.js';\nimport { b } from '../bench/metrics.js';"), ['src/engine imports src/proxy', 'src/engine imports src/bench']);
  assert.deepEqual(rules('src/proxy/x.ts', "import { e } from '../engine/protocol.js';"), ['src/proxy imports src/engine']);
  assert.deepEqual(rules('src/router/x.ts', "import { n } from '../native/binding.js';"), ['src/router imports src/native']);
  assert.deepEqual(rules('src/kv/tiers/x.ts', "import type { K } from '../../engine/connector/base.js';"), ['src/kv/tiers imports src/engine']);
  assert.deepEqual(rules('src/kv/connector/x.ts', "import type { K } from '../../engine/connector/base.js';"), [], 'connectors implement the engine seam');
  assert.deepEqual(rules('src/engine/x.ts', "import { u } from '../util/chain-hash.js';\nimport { n } from '../native/binding.js';"), []);
});

test('the tree keeps its import walls', () => {
  const files = sources(join(root, 'src'));
  assert.ok(files.length > 100, `read ${files.length} source files under src/`);
  const breaches = findWallBreaches(files);
  assert.deepEqual(breaches.map((b) => `${b.file} -> ${b.target} (${b.rule})`), []);
});
