// The structured-output fields of a request -> one GrammarSpec (src/structured/grammar-spec.ts), or null.
// OpenAI: response_format {type: text | json_object | json_schema {json_schema: {name, schema, strict}}}.
// vLLM: structured_outputs {json | regex | choice | grammar | json_object | structural_tag,
// disable_any_whitespace}, and the older guided_json / guided_regex / guided_choice / guided_grammar
// (guided_whitespace_pattern is not supported: 400). At most one constraint per request; shapes are
// checked here (400 naming the field), compilation errors come from the GrammarService (also 400).
import type { GrammarSpec } from '../structured/grammar-spec.js';
import type { ServerContext } from './server-context.js';
import type { GenerateRequest } from '../engine/protocol.js';
import { badRequest } from './http-errors.js';
import { PdsError } from '../util/errors.js';
import type { RequestMatcher } from '../structured/request-matcher.js';

export interface StructuredFields {
  response_format?: { type: string; [k: string]: unknown } | null;
  structured_outputs?: Record<string, unknown> | null;
  guided_json?: unknown;
  guided_regex?: unknown;
  guided_choice?: unknown;
  guided_grammar?: unknown;
  guided_whitespace_pattern?: unknown;
  guided_decoding_backend?: unknown;
}

export interface StructuredRequest {
  spec: GrammarSpec;
  param: string; // the field it came from, named in errors
}

const MAX_CHOICES = 1024;

/** Throws 400 naming the field on a malformed or conflicting constraint. */
export function structuredSpecOf(f: StructuredFields): StructuredRequest | null {
  const found: StructuredRequest[] = [];
  const so = f.structured_outputs;
  const anyWs = !(so && so.disable_any_whitespace === true);
  if (f.guided_whitespace_pattern != null) throw badRequest('guided_whitespace_pattern is not supported', 'guided_whitespace_pattern');
  if (f.guided_decoding_backend != null && f.guided_decoding_backend !== 'xgrammar' && f.guided_decoding_backend !== 'auto') {
    throw badRequest(`guided_decoding_backend '${String(f.guided_decoding_backend)}' is not available (only xgrammar)`, 'guided_decoding_backend');
  }

  const rf = f.response_format;
  if (rf && rf.type !== 'text') {
    if (rf.type === 'json_object') found.push({ spec: { kind: 'json_object' }, param: 'response_format' });
    else if (rf.type === 'json_schema') {
      const js = rf.json_schema as Record<string, unknown> | undefined;
      if (!js || typeof js !== 'object' || Array.isArray(js)) throw badRequest('response_format.json_schema must be an object', 'response_format.json_schema');
      const schema = js.schema ?? js.json_schema; // some clients send {json_schema: {json_schema: ...}}
      if (schema === undefined) found.push({ spec: { kind: 'json_object' }, param: 'response_format.json_schema' });
      else found.push({ spec: jsonSchema(schema, anyWs, 'response_format.json_schema.schema'), param: 'response_format.json_schema.schema' });
    } else if (rf.type === 'structural_tag') {
      found.push({ spec: { kind: 'structural_tag', tag: JSON.stringify(rf) }, param: 'response_format' });
    } else throw badRequest(`response_format type '${rf.type}' is not supported (text, json_object, json_schema, structural_tag)`, 'response_format.type');
  }

  if (so) {
    const keys = ['json', 'regex', 'choice', 'grammar', 'json_object', 'structural_tag'].filter((k) => so[k] != null && so[k] !== false);
    if (keys.length > 1) throw badRequest(`structured_outputs: only one of ${keys.join(', ')} may be set`, 'structured_outputs');
    const k = keys[0];
    if (k === 'json') found.push({ spec: jsonSchema(so.json, anyWs, 'structured_outputs.json'), param: 'structured_outputs.json' });
    else if (k === 'regex') found.push({ spec: regex(so.regex, 'structured_outputs.regex'), param: 'structured_outputs.regex' });
    else if (k === 'choice') found.push({ spec: choice(so.choice, 'structured_outputs.choice'), param: 'structured_outputs.choice' });
    else if (k === 'grammar') found.push({ spec: grammar(so.grammar, 'structured_outputs.grammar'), param: 'structured_outputs.grammar' });
    else if (k === 'json_object') found.push({ spec: { kind: 'json_object' }, param: 'structured_outputs.json_object' });
    else if (k === 'structural_tag') {
      const t = so.structural_tag;
      found.push({ spec: { kind: 'structural_tag', tag: typeof t === 'string' ? t : JSON.stringify(t) }, param: 'structured_outputs.structural_tag' });
    }
  }
  if (f.guided_json != null) found.push({ spec: jsonSchema(f.guided_json, anyWs, 'guided_json'), param: 'guided_json' });
  if (f.guided_regex != null) found.push({ spec: regex(f.guided_regex, 'guided_regex'), param: 'guided_regex' });
  if (f.guided_choice != null) found.push({ spec: choice(f.guided_choice, 'guided_choice'), param: 'guided_choice' });
  if (f.guided_grammar != null) found.push({ spec: grammar(f.guided_grammar, 'guided_grammar'), param: 'guided_grammar' });

  if (found.length > 1) throw badRequest(`only one structured output constraint per request (got ${found.map((s) => s.param).join(', ')})`, found[1]!.param);
  return found[0] ?? null;
}

function jsonSchema(v: unknown, anyWhitespace: boolean, param: string): GrammarSpec {
  let schema: unknown = v;
  if (typeof v === 'string') {
    try {
      schema = JSON.parse(v);
    } catch (e) {
      throw badRequest(`${param} is not valid JSON: ${(e as Error).message}`, param);
    }
  }
  if (schema === true) return { kind: 'json_object' };
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw badRequest(`${param} must be a JSON schema object`, param);
  return { kind: 'json_schema', schema: JSON.stringify(schema), anyWhitespace };
}

function regex(v: unknown, param: string): GrammarSpec {
  if (typeof v !== 'string' || !v) throw badRequest(`${param} must be a non-empty string`, param);
  return { kind: 'regex', pattern: v };
}

function choice(v: unknown, param: string): GrammarSpec {
  if (!Array.isArray(v) || !v.length || v.length > MAX_CHOICES || !v.every((c) => typeof c === 'string' && c.length > 0)) {
    throw badRequest(`${param} must be a list of 1 to ${MAX_CHOICES} non-empty strings`, param);
  }
  return { kind: 'choice', choices: v as string[] };
}

function grammar(v: unknown, param: string): GrammarSpec {
  if (typeof v !== 'string' || !v.trim()) throw badRequest(`${param} must be a non-empty EBNF grammar string`, param);
  return { kind: 'grammar', ebnf: v };
}

/** Gives each request, and each of its n sequences, its own matcher for `s` (compiled once, cached). No-op
 * when s is null. */
export async function attachConstraints(ctx: ServerContext, s: StructuredRequest | null, reqs: GenerateRequest[]): Promise<void> {
  if (!s) return;
  if (!ctx.grammar) throw new PdsError('PDS_ERR_BAD_REQUEST', 'structured output is not available on this server', s.param);
  for (const r of reqs) {
    r.constraint = await ctx.grammar.matcher(s.spec, s.param);
    const forks: RequestMatcher[] = [];
    for (let i = 1; i < (r.n ?? 1); i++) forks.push(await ctx.grammar.matcher(s.spec, s.param));
    if (forks.length) r.forkConstraints = forks;
  }
}
