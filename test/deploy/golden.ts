// Golden rendered manifests (test/deploy/golden/<values file>): the render with its one random part (the
// generated internal secret, checked to be 64 hex characters) replaced by a placeholder. UPDATE_GOLDEN=1
// rewrites the golden instead of comparing.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../../src/deploy/render.js';

export const goldenDir = join(repoRoot, 'test', 'deploy', 'golden');
export const SECRET_PLACEHOLDER = '"<generated: base64 of 64 hex characters>"';

/** Replaces the generated internal secret; throws if it is missing or not base64 of 64 hex characters. */
export function normalizeRender(text: string): string {
  const re = /(# generated: [^\n]*\n\s+internal-secret: )"([^"]*)"/g;
  const found = [...text.matchAll(re)];
  if (found.length !== 1) throw new Error(`expected one generated internal-secret in the render, found ${found.length}`);
  const plain = Buffer.from(found[0]![2]!, 'base64').toString('utf8');
  if (!/^[0-9a-f]{64}$/.test(plain)) throw new Error(`generated internal-secret is not 64 hex characters: ${JSON.stringify(plain)}`);
  return text.replace(re, `$1${SECRET_PLACEHOLDER}`);
}

/** null when equal; else a message naming the golden file and the first differing line. */
export function goldenDiff(goldenPath: string, actual: string): string | null {
  const rel = relative(repoRoot, goldenPath);
  if (!existsSync(goldenPath)) return `${rel} is missing (run with UPDATE_GOLDEN=1 to write it)`;
  const want = readFileSync(goldenPath, 'utf8');
  if (want === actual) return null;
  const a = want.split('\n');
  const b = actual.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `${rel}:${i + 1} differs from the render (UPDATE_GOLDEN=1 rewrites it)\n  golden: ${JSON.stringify(a[i] ?? '<end of file>')}\n  render: ${JSON.stringify(b[i] ?? '<end of file>')}`;
}

/** Compares, or writes the golden when UPDATE_GOLDEN=1. Returns the mismatch message or null. */
export function checkGolden(name: string, actual: string): string | null {
  const path = join(goldenDir, name);
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(path, actual);
    return null;
  }
  return goldenDiff(path, actual);
}
