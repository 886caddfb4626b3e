// Mistral: [TOOL_CALLS][{"name": "f", "arguments": {...}}, ...] (content before the marker is text).
import { CallStream } from './call-stream.js';
import { callFromJson, tryJson, type ParsedToolCall, type ToolParser, type ToolParseResult } from './types.js';

const MARKER = '[TOOL_CALLS]';

export const mistralParser: ToolParser = {
  name: 'mistral',
  startMarker: MARKER,
  stream: () => new CallStream('mistral'),
  parse(text: string): ToolParseResult {
    const at = text.indexOf(MARKER);
    if (at < 0) return { content: text, calls: [] };
    const v = tryJson(text.slice(at + MARKER.length).trim());
    const list = Array.isArray(v) ? v : v !== undefined ? [v] : null;
    if (!list) return { content: text, calls: [] };
    const calls: ParsedToolCall[] = [];
    for (const item of list) {
      const c = callFromJson(item);
      if (!c) return { content: text, calls: [] };
      calls.push(c);
    }
    const content = text.slice(0, at).trim();
    return { content: content || null, calls };
  },
};
