// Test support: tokenizers loaded once per test process (the Qwen3/Llama-3.1 ones take ~0.5 s each).
import { join } from 'node:path';
import { loadTokenizer, loadTokenizerFromDir } from '../load.js';
import { packagedTokenizerPaths, type PackagedTokenizer } from '../packaged.js';
import type { Tokenizer } from '../types.js';

const cache = new Map<string, Promise<Tokenizer>>();

export function packagedTokenizer(name: PackagedTokenizer): Promise<Tokenizer> {
  let p = cache.get(name);
  if (!p) {
    p = loadTokenizer(packagedTokenizerPaths(name));
    cache.set(name, p);
  }
  return p;
}

/** A fixture model's tokenizer (fixtures/models/<model>/). */
export function fixtureTokenizer(fixtures: string, model: string): Promise<Tokenizer> {
  const dir = join(fixtures, 'models', model);
  let p = cache.get(dir);
  if (!p) {
    p = loadTokenizerFromDir(dir);
    cache.set(dir, p);
  }
  return p;
}
