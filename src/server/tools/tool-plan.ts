// tools + tool_choice of a chat request -> what the server does (vLLM's semantics):
//   none      tools are only rendered into the prompt; the output is text
//   auto      the model decides; its text is parsed by --tool-call-parser (needs --enable-auto-tool-choice);
//             with a `strict: true` function, a structural-tag grammar switches on at the parser's call
//             marker: each call then has the parser's shape, names a listed function, and a strict
//             function's arguments follow its schema (other functions': any JSON object); text outside
//             calls is free. Parsers without callTag (llama3_json, mistral): strict under auto is a 400.
//   required  the grammar forces a JSON list of calls [{"name": ..., "parameters": {...}}, ...] (>= 1)
//   named     the grammar forces the named function's arguments object
// Default: auto when tools are given and auto tool choice is enabled, else none.
import { badRequest } from '../http-errors.js';
import type { StructuredRequest } from '../structured-fields.js';
import { getToolParser } from '../../tools/parsers/registry.js';
import type { ToolParser } from '../../tools/parsers/types.js';

export interface ToolSettings {
  enableAutoToolChoice: boolean;
  toolCallParser: string | null; // a registry name (checked at startup)
}

export interface FunctionTool {
  name: string;
  parameters: Record<string, unknown>;
  strict: boolean;
}

export interface ToolPlan {
  mode: 'auto' | 'required' | 'named';
  tools: FunctionTool[];
  named: string | null;
  parser: ToolParser | null; // auto only
  constraint: StructuredRequest | null; // required / named; auto with a strict function
}

export interface ToolFields {
  tools?: unknown[] | null;
  tool_choice?: unknown;
  parallel_tool_calls?: boolean | null;
}

const NAME = /^[a-zA-Z0-9_.-]{1,64}$/;

/** null = no tool handling (mode none, or no tools). Throws 400 naming the field. */
export function toolPlanOf(f: ToolFields, s: ToolSettings): ToolPlan | null {
  const tools = parseTools(f.tools);
  const choice = f.tool_choice ?? (tools.length && s.enableAutoToolChoice ? 'auto' : 'none');
  if (choice === 'none') return null;
  if (!tools.length) throw badRequest('tool_choice requires tools', 'tool_choice');
  if (choice === 'auto') {
    const parser = s.toolCallParser ? getToolParser(s.toolCallParser) : null;
    if (!s.enableAutoToolChoice || !parser) {
      throw badRequest('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', 'tool_choice');
    }
    return { mode: 'auto', tools, named: null, parser, constraint: strictAutoConstraint(tools, parser) };
  }
  if (choice === 'required') {
    const schema = {
      type: 'array',
      minItems: 1,
      ...(f.parallel_tool_calls === false ? { maxItems: 1 } : {}),
      items: {
        anyOf: tools.map((t) => ({
          type: 'object',
          properties: { name: { type: 'string', enum: [t.name] }, parameters: t.parameters },
          required: ['name', 'parameters'],
        })),
      },
    };
    return { mode: 'required', tools, named: null, parser: null, constraint: jsonConstraint(schema, 'tools') };
  }
  const c = choice as { type?: unknown; function?: { name?: unknown } };
  if (c && typeof c === 'object' && c.type === 'function' && c.function && typeof c.function.name === 'string') {
    const t = tools.find((x) => x.name === c.function!.name);
    if (!t) throw badRequest(`tool_choice names function '${c.function.name}', which is not in tools`, 'tool_choice');
    return { mode: 'named', tools, named: t.name, parser: null, constraint: jsonConstraint(t.parameters, 'tools') };
  }
  throw badRequest('tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}', 'tool_choice');
}

/** auto with strict functions: xgrammar's triggered tags (free text until the marker, then one call tag). */
function strictAutoConstraint(tools: FunctionTool[], parser: ToolParser): StructuredRequest | null {
  const i = tools.findIndex((t) => t.strict);
  if (i < 0) return null;
  if (!parser.callTag) {
    throw badRequest(`tools[${i}].function.strict: true under tool_choice "auto" is not supported with the ${parser.name} tool-call parser (use hermes, or tool_choice "required" / a named function)`, `tools.${i}.function.strict`);
  }
  const tags = tools.map((t) => ({
    type: 'tag',
    ...parser.callTag!(t.name),
    content: { type: 'json_schema', json_schema: t.strict ? t.parameters : { type: 'object' } },
  }));
  const tag = { type: 'structural_tag', format: { type: 'triggered_tags', triggers: [parser.startMarker], tags } };
  return { spec: { kind: 'structural_tag', tag: JSON.stringify(tag), compactJson: true }, param: 'tools' };
}

function jsonConstraint(schema: unknown, param: string): StructuredRequest {
  // compact JSON: the text is never shown, and free whitespace only costs tokens
  return { spec: { kind: 'json_schema', schema: JSON.stringify(schema), anyWhitespace: false }, param };
}

function parseTools(v: unknown[] | null | undefined): FunctionTool[] {
  if (!v) return [];
  return v.map((t, i) => {
    const o = t as { type?: unknown; function?: { name?: unknown; parameters?: unknown; strict?: unknown } };
    if (!o || typeof o !== 'object' || o.type !== 'function' || !o.function || typeof o.function !== 'object') {
      throw badRequest(`tools[${i}] must be {"type": "function", "function": {...}}`, `tools.${i}`);
    }
    const name = o.function.name;
    if (typeof name !== 'string' || !NAME.test(name)) throw badRequest(`tools[${i}].function.name must match ${NAME.source}`, `tools.${i}.function.name`);
    const p = o.function.parameters ?? { type: 'object', properties: {} };
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw badRequest(`tools[${i}].function.parameters must be a JSON schema object`, `tools.${i}.function.parameters`);
    const strict = o.function.strict ?? false;
    if (typeof strict !== 'boolean') throw badRequest(`tools[${i}].function.strict must be a boolean`, `tools.${i}.function.strict`);
    return { name, parameters: p as Record<string, unknown>, strict };
  });
}
