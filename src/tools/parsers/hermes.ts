// Hermes / Qwen 2.5 / Qwen 3: <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>, one block per call.
import { CallStream } from './call-stream.js';
import { callFromJson, tryJson, type ParsedToolCall, type ToolParser, type ToolParseResult } from './types.js';

const BLOCK = /<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g;

export const hermesParser: ToolParser = {
  name: 'hermes',
  startMarker: '<tool_call>',
  stream: () => new CallStream('hermes'),
  callTag: (name) => ({ begin: `<tool_call>\n{"name": ${JSON.stringify(name)}, "arguments": `, end: '}\n</tool_call>' }),
  parse(text: string): ToolParseResult {
    if (!text.includes('<tool_call>')) return { content: text, calls: [] };
    const calls: ParsedToolCall[] = [];
    for (const m of text.matchAll(BLOCK)) {
      const c = callFromJson(tryJson(m[1]!));
      if (!c) return { content: text, calls: [] };
      calls.push(c);
    }
    if (!calls.length) return { content: text, calls: [] };
    const content = text.slice(0, text.indexOf('<tool_call>')).trim();
    return { content: content || null, calls };
  },
};
