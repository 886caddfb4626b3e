// Llama 3.x JSON tool calls: the output is {"name": "f", "parameters": {...}} (optionally after
// <|python_tag|>), several calls separated by ";".
import { CallStream } from './call-stream.js';
import { callFromJson, tryJson, type ParsedToolCall, type ToolParser, type ToolParseResult } from './types.js';

export const llama3JsonParser: ToolParser = {
  name: 'llama3_json',
  startMarker: '{',
  stream: () => new CallStream('llama3_json'),
  parse(text: string): ToolParseResult {
    let t = text.trim();
    if (t.startsWith('<|python_tag|>')) t = t.slice('<|python_tag|>'.length).trim();
    if (!t.startsWith('{')) return { content: text, calls: [] };
    const calls: ParsedToolCall[] = [];
    for (const part of splitTopLevel(t, ';')) {
      const c = callFromJson(tryJson(part));
      if (!c) return { content: text, calls: [] };
      calls.push(c);
    }
    return { content: null, calls };
  },
};

/** Splits at `sep` outside JSON strings and brackets. */
function splitTopLevel(t: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inStr = false;
  let start = 0;
  for (let i = 0; i < t.length; i++) {
    const ch = t[i]!;
    if (inStr) {
      if (ch === '\\') i++;
      else if (ch === '"') inStr = false;
    } else if (ch === '"') inStr = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
    else if (ch === sep && depth === 0) {
      out.push(t.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(t.slice(start).trim());
  return out.filter((s) => s.length > 0);
}
