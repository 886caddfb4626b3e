// Worker thread: proves that a GrammarSpec compiles, in its own xgrammar instance, and reports how long
// it took. xgrammar aborts its WASM instance on invalid input (and a poisoned instance corrupts later
// calls), so untrusted specs are compiled here first; after any failure the parent replaces this worker.
// Messages in: {id, spec}; out: {ready: true} once, then {id, ok: true, ms} | {id, ok: false, error}.
import { parentPort, workerData } from 'node:worker_threads';
import { loadXgrammar } from './xgrammar-loader.js';
import { compileSpec, type GrammarSpec } from './grammar-spec.js';
import type { CompilerInit } from './grammar-service.js';

const init = workerData as CompilerInit;
const xg = loadXgrammar();
// xgrammar prints "[FATAL] file:line: message" through console.error just before it aborts
let lastError = '';
console.error = (...args: unknown[]) => {
  const text = args.map(String).join(' ');
  if (text.includes('[FATAL]') || !lastError) lastError = text;
};

const ready = (async () => {
  const ti = await xg.TokenizerInfo.createTokenizerInfo(init.encodedVocab, init.vocabType, init.prependSpace, init.vocabSize, init.stopTokenIds);
  return xg.GrammarCompiler.createGrammarCompiler(ti, false);
})();
// jobs' deadlines start once this is posted (building the TokenizerInfo is not the spec's cost)
ready.then(() => parentPort!.postMessage({ ready: true }), (e) => { throw e; });

parentPort!.on('message', async (msg: { id: number; spec: GrammarSpec }) => {
  lastError = '';
  try {
    const compiler = await ready;
    const t0 = performance.now();
    const cg = await compileSpec(compiler, msg.spec);
    const ms = performance.now() - t0;
    cg.dispose();
    parentPort!.postMessage({ id: msg.id, ok: true, ms });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, ok: false, error: cleanError(lastError || String((e as Error)?.message ?? e)) });
  }
});

/** "[FATAL] /path/json_schema_converter.cc:3460: Check failed: ...: Failed to parse JSON: ..." -> the message */
function cleanError(text: string): string {
  const m = /\[FATAL\][^:]*:\d+:\s*(.*)$/s.exec(text);
  return (m ? m[1]! : text).replace(/^Check failed: \(.*?\) is false:\s*/s, '').trim().slice(0, 500);
}
