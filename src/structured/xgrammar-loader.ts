// Loads @mlc-ai/web-xgrammar (the WASM build of xgrammar) in Node. The package ships one UMD bundle whose
// Emscripten glue reads `require` and `__filename`; under ESM neither exists, so the bundle is evaluated as
// CommonJS with a createRequire of its own path. One instance per process (the WASM heap is shared by every
// TokenizerInfo, compiled grammar and matcher made from it).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as XG from '@mlc-ai/web-xgrammar';

export type Xgrammar = typeof XG & {
  /** The embind module once initialised (exposed by the loader; see newMatcherHandle). */
  __binding?: () => { GrammarMatcher: new (compiled: unknown, stop: unknown, terminateWithoutStop: boolean, maxRollback: number) => unknown } | null;
};

let cached: Xgrammar | null = null;

/** The module's exports (GrammarCompiler, GrammarMatcher, TokenizerInfo, Grammar, ...). Synchronous; the
 * WASM itself initialises on the first async factory call (TokenizerInfo.createTokenizerInfo). */
export function loadXgrammar(): Xgrammar {
  if (cached) return cached;
  const req = createRequire(import.meta.url);
  const file = req.resolve('@mlc-ai/web-xgrammar');
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  // expose the module-private embind handle: GrammarMatcher.createGrammarMatcher leaks a TokenizerInfo
  // handle per call (compiledGrammar.tokenizerInfo() is never deleted); request-matcher.ts avoids it
  const src = readFileSync(file, 'utf8').replace('let binding = null;', 'let binding = null; exports.__binding = () => binding;');
  const fn = new Function('exports', 'require', 'module', '__filename', '__dirname', src) as (
    e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string,
  ) => void;
  fn(mod.exports, createRequire(file), mod, file, dirname(file));
  cached = mod.exports as unknown as Xgrammar;
  return cached;
}
