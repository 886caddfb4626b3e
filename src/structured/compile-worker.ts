// Worker thread: checks that a GrammarSpec is valid, in its own xgrammar instance, by converting it into a
// Grammar (JSON, JSON schema, regex, EBNF, structural tag: the steps where xgrammar aborts its WASM instance
// on bad input, and a poisoned instance corrupts later calls) without the vocabulary work; the main thread
// then compiles the spec once. Reports the grammar's size (normalized EBNF characters), which bounds that
// compile. After any failure the parent replaces this worker.
// Messages in: {id, spec}; out: {ready: true} once, then {id, ok: true, ms, grammarChars} | {id, ok: false, error}.
import { parentPort } from 'node:worker_threads';
import { loadXgrammar } from './xgrammar-loader.js';
import { parseSpec, type GrammarSpec } from './grammar-spec.js';

const xg = loadXgrammar();
// xgrammar prints "[FATAL] file:line: message" through console.error just before it aborts
let lastError = '';
console.error = (...args: unknown[]) => {
  const text = args.map(String).join(' ');
  if (text.includes('[FATAL]') || !lastError) lastError = text;
};

// the WASM module initialises on its first async call; jobs' deadlines start once ready is posted
const ready = xg.Grammar.fromEBNF('root ::= "a"').then((g) => g.dispose());
ready.then(() => parentPort!.postMessage({ ready: true }), (e) => { throw e; });

parentPort!.on('message', async (msg: { id: number; spec: GrammarSpec }) => {
  lastError = '';
  try {
    await ready;
    const t0 = performance.now();
    const g = await parseSpec(xg, msg.spec);
    const grammarChars = g.toString().length;
    g.dispose();
    parentPort!.postMessage({ id: msg.id, ok: true, ms: performance.now() - t0, grammarChars });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, ok: false, error: cleanError(lastError || String((e as Error)?.message ?? e)) });
  }
});

/** "[FATAL] /path/json_schema_converter.cc:3460: Check failed: ...: Failed to parse JSON: ..." -> the message */
function cleanError(text: string): string {
  const m = /\[FATAL\][^:]*:\d+:\s*(.*)$/s.exec(text);
  return (m ? m[1]! : text).replace(/^Check failed: \(.*?\) is false:\s*/s, '').trim().slice(0, 500);
}
