// What a request constrains its output to, in xgrammar's terms, and how to compile it. Shared by the
// compile worker (which proves a spec compiles, in an isolated WASM instance) and the main thread.
import type { CompiledGrammar, Grammar, GrammarCompiler } from '@mlc-ai/web-xgrammar';
import type { Xgrammar } from './xgrammar-loader.js';

/** longest whitespace run between JSON tokens when whitespace is free (a 4-deep pretty-print needs 9) */
export const MAX_WS = 16;

export type GrammarSpec =
  | { kind: 'json_object' } // any JSON object (json_object mode, vLLM's structured_outputs.json_object)
  | { kind: 'json_schema'; schema: string; anyWhitespace: boolean } // schema: JSON text
  | { kind: 'regex'; pattern: string }
  | { kind: 'choice'; choices: string[] }
  | { kind: 'grammar'; ebnf: string } // xgrammar EBNF (GBNF-like), root rule "root"
  // xgrammar structural tag JSON (tool calling). compactJson: its json_schema contents take no free
  // whitespace (as json_schema with anyWhitespace false: a small model otherwise spends its budget on it)
  | { kind: 'structural_tag'; tag: string; compactJson?: boolean };

/** The compile cache key: equal keys compile to the same grammar. */
export function specKey(s: GrammarSpec): string {
  switch (s.kind) {
    case 'json_object': return 'json_object';
    case 'json_schema': return `json_schema\0${s.anyWhitespace ? 1 : 0}\0${s.schema}`;
    case 'regex': return `regex\0${s.pattern}`;
    case 'choice': return `choice\0${JSON.stringify(s.choices)}`;
    case 'grammar': return `grammar\0${s.ebnf}`;
    case 'structural_tag': return `structural_tag\0${s.compactJson ? 1 : 0}\0${s.tag}`;
  }
}

/** An EBNF string literal for any text (xgrammar takes C-style escapes). */
export function ebnfLiteral(text: string): string {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** Compiles on whichever xgrammar instance `compiler` belongs to. Throws (and may poison that WASM
 * instance: xgrammar aborts on bad input) when the spec is invalid — run unproven specs in the worker. */
export async function compileSpec(xg: Xgrammar, compiler: GrammarCompiler, s: GrammarSpec): Promise<CompiledGrammar> {
  switch (s.kind) {
    case 'json_object': return compiler.compileBuiltinJSONGrammar();
    // any whitespace: runs capped at MAX_WS characters (small models otherwise spend their budget on it)
    case 'json_schema': return compiler.compileJSONSchema(s.schema, s.anyWhitespace, -1, s.anyWhitespace ? undefined : [',', ':'], true, s.anyWhitespace ? MAX_WS : undefined);
    case 'regex': return compiler.compileStructuralTag({ type: 'structural_tag', format: { type: 'regex', pattern: s.pattern } });
    case 'choice': return compiler.compileGrammar(`root ::= ${s.choices.map(ebnfLiteral).join(' | ')}`);
    case 'grammar': return compiler.compileGrammar(s.ebnf);
    case 'structural_tag': return compiler.compileStructuralTag(s.compactJson ? await compactTag(xg, s.tag) : s.tag);
  }
}

/** The tag with each {type: json_schema} content replaced by the grammar of that schema without free
 * whitespace (xgrammar's structural tags take a schema's whitespace as free). */
async function compactTag(xg: Xgrammar, tag: string): Promise<string> {
  const walk = async (v: unknown): Promise<unknown> => {
    if (Array.isArray(v)) return Promise.all(v.map(walk));
    if (!v || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    if (o.type === 'json_schema' && 'json_schema' in o) {
      const g = await xg.Grammar.fromJSONSchema(JSON.stringify(o.json_schema), false, -1, [',', ':'], true);
      const grammar = g.toString();
      g.dispose();
      return { type: 'grammar', grammar };
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = await walk(x);
    return out;
  };
  return JSON.stringify(await walk(JSON.parse(tag)));
}

/**
 * The spec as an xgrammar Grammar (no vocabulary work: JSON / schema / regex / EBNF parsing and conversion,
 * the steps that abort xgrammar on bad input, so run unproven specs in the worker): what compileSpec
 * does first, before the vocabulary work. Its toString() is the normalized EBNF (its length bounds the
 * compile; note a structural tag's triggered dispatch does not survive a round trip through that text).
 */
export async function parseSpec(xg: Xgrammar, s: GrammarSpec): Promise<Grammar> {
  const G = xg.Grammar;
  switch (s.kind) {
    case 'json_object': return G.builtinJSONGrammar();
    case 'json_schema': return G.fromJSONSchema(s.schema, s.anyWhitespace, -1, s.anyWhitespace ? undefined : [',', ':'], true, s.anyWhitespace ? MAX_WS : undefined);
    case 'regex': return G.fromStructuralTag({ type: 'structural_tag', format: { type: 'regex', pattern: s.pattern } });
    case 'choice': return G.fromEBNF(`root ::= ${s.choices.map(ebnfLiteral).join(' | ')}`);
    case 'grammar': return G.fromEBNF(s.ebnf);
    case 'structural_tag': return G.fromStructuralTag(s.compactJson ? await compactTag(xg, s.tag) : s.tag);
  }
}
