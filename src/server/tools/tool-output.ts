// Model text -> the assistant message of a tool-using chat request, whole (toolMessage) or as streaming
// deltas (ToolDeltaStream), in OpenAI's shapes:
//   message: {role, content, tool_calls: [{id, type: "function", function: {name, arguments}}]}
//   deltas:  {tool_calls: [{index, id, type, function: {name, arguments: ""}}]} first for each call,
//            then {tool_calls: [{index, function: {arguments: fragment}}]}; text outside calls as {content}.
// finish_reason is "tool_calls" when the message carries calls. Output whose calls do not parse (cut by
// max_tokens, say) is returned as content with its own finish_reason.
import { randomBytes } from 'node:crypto';
import type { FinishReason } from '../../engine/protocol.js';
import type { ParsedToolCall } from '../../tools/parsers/types.js';
import type { ToolCallStream } from '../../tools/parsers/call-stream.js';
import type { ToolPlan } from './tool-plan.js';
import type { RequestOutput } from '../../engine/protocol.js';
import type { SseWriter } from '../sse.js';

export interface WireToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatDelta =
  | Record<string, never> // the final chunk's empty delta
  | { content: string }
  | { tool_calls: Array<{ index: number; id?: string; type?: 'function'; function: { name?: string; arguments: string } }> };

export const toolCallId = () => `chatcmpl-tool-${randomBytes(16).toString('hex')}`;

/** Calls in the whole text, per the plan's mode. */
export function parseToolOutput(plan: ToolPlan, text: string): { content: string | null; calls: ParsedToolCall[] } {
  if (plan.mode === 'auto') return plan.parser!.parse(text);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { content: text, calls: [] };
  }
  if (plan.mode === 'named') return { content: null, calls: [{ name: plan.named!, arguments: JSON.stringify(v) }] };
  if (!Array.isArray(v)) return { content: text, calls: [] };
  const calls = v.map((c: { name?: unknown; parameters?: unknown }) => ({ name: String(c?.name), arguments: JSON.stringify(c?.parameters ?? {}) }));
  return { content: null, calls };
}

export function toolMessage(plan: ToolPlan, text: string, finishReason: FinishReason): {
  message: { role: 'assistant'; content: string | null; reasoning_content: null; tool_calls: WireToolCall[] };
  finishReason: FinishReason | 'tool_calls';
} {
  const { content, calls } = parseToolOutput(plan, text);
  const toolCalls = calls.map((c) => ({ id: toolCallId(), type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
  return {
    message: { role: 'assistant', content, reasoning_content: null, tool_calls: toolCalls },
    finishReason: toolCalls.length && finishReason !== 'abort' ? 'tool_calls' : finishReason,
  };
}

/**
 * Streaming: named streams the arguments as they come; required scans the JSON list as it grows (a
 * header delta when a call's name is complete, then its parameters text); auto streams content up to the
 * parser's start marker (never markup), then each call as its name and argument fragments are written.
 */
export class ToolDeltaStream {
  private text = '';
  private pos = 0; // required: how much of text was turned into deltas
  private index = -1; // current call
  private depth = 0; // required: bracket depth inside the current parameters
  private inString = false;
  private escaped = false;
  private inArgs = false;
  private sentCalls = 0;
  private readonly auto: ToolCallStream | null;
  private pendingAuto = '';

  constructor(private readonly plan: ToolPlan) {
    this.auto = plan.mode === 'auto' ? plan.parser!.stream() : null;
  }

  push(delta: string): ChatDelta[] {
    if (this.auto) {
      this.pendingAuto = delta;
      return this.scanAuto(false);
    }
    this.text += delta;
    if (this.plan.mode === 'named') {
      const out: ChatDelta[] = [];
      if (this.index < 0) {
        this.index = 0;
        this.sentCalls = 1;
        out.push({ tool_calls: [{ index: 0, id: toolCallId(), type: 'function', function: { name: this.plan.named!, arguments: '' } }] });
      }
      if (delta) out.push({ tool_calls: [{ index: 0, function: { arguments: delta } }] });
      return out;
    }
    if (this.plan.mode === 'required') return this.scanRequired();
    return this.scanAuto(false);
  }

  /** Deltas still held back at the end, and the finish reason to report. */
  end(finishReason: FinishReason): { deltas: ChatDelta[]; finishReason: FinishReason | 'tool_calls' } {
    const deltas = this.plan.mode === 'auto' ? this.scanAuto(true) : [];
    return { deltas, finishReason: this.sentCalls > 0 && finishReason !== 'abort' ? 'tool_calls' : finishReason };
  }

  private scanRequired(): ChatDelta[] {
    const out: ChatDelta[] = [];
    const t = this.text;
    while (this.pos < t.length) {
      if (!this.inArgs) {
        const m = /^\s*[[,]\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"parameters"\s*:\s*/.exec(t.slice(this.pos));
        if (!m) {
          // between calls: skip the closing '}' (and ']') once they are there; wait for more otherwise
          const close = /^\s*\}\s*(\])?/.exec(t.slice(this.pos));
          if (close && this.index >= 0) {
            this.pos += close[0].length - (close[1] ? 1 : 0);
            if (close[1]) this.pos = t.length;
            continue;
          }
          return out;
        }
        this.index++;
        this.sentCalls++;
        out.push({ tool_calls: [{ index: this.index, id: toolCallId(), type: 'function', function: { name: JSON.parse(m[1]!) as string, arguments: '' } }] });
        this.pos += m[0].length;
        this.inArgs = true;
        this.depth = 0;
        continue;
      }
      // inside the parameters value: emit up to its end
      let i = this.pos;
      let done = false;
      for (; i < t.length; i++) {
        const ch = t[i]!;
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (ch === '\\') this.escaped = true;
          else if (ch === '"') this.inString = false;
        } else if (ch === '"') this.inString = true;
        else if (ch === '{' || ch === '[') this.depth++;
        else if (ch === '}' || ch === ']') {
          this.depth--;
          if (this.depth === 0) {
            i++;
            done = true;
            break;
          }
        }
      }
      if (i > this.pos) out.push({ tool_calls: [{ index: this.index, function: { arguments: t.slice(this.pos, i) } }] });
      this.pos = i;
      if (done) this.inArgs = false;
    }
    return out;
  }

  /** auto: the parser's incremental stream (tools/parsers/call-stream.ts) as chat deltas. */
  private scanAuto(final: boolean): ChatDelta[] {
    const evs = final ? this.auto!.end() : this.auto!.push(this.pendingAuto);
    this.pendingAuto = '';
    const out: ChatDelta[] = [];
    for (const e of evs) {
      if (e.kind === 'content') out.push({ content: e.text });
      else if (e.kind === 'call') {
        this.sentCalls++;
        out.push({ tool_calls: [{ index: e.index, id: toolCallId(), type: 'function', function: { name: e.name, arguments: '' } }] });
      } else out.push({ tool_calls: [{ index: e.index, function: { arguments: e.text } }] });
    }
    return out;
  }
}

/** One engine increment of a tool-using stream -> its chunks; the last one of a finished output carries
 * finish_reason (and stop_reason). Logprobs are not reported on tool streams. */
export async function sendToolDeltas(
  sse: SseWriter, head: Record<string, unknown>, tools: ToolDeltaStream, index: number, out: RequestOutput, usage: unknown,
): Promise<void> {
  const deltas = tools.push(out.newText);
  let finish: FinishReason | 'tool_calls' | null = null;
  if (out.finished) {
    const end = tools.end(out.finishReason ?? 'stop');
    deltas.push(...end.deltas);
    finish = end.finishReason;
  }
  if (finish !== null && !deltas.length) deltas.push({});
  for (let i = 0; i < deltas.length; i++) {
    const last = i === deltas.length - 1;
    await sse.send({
      ...head,
      choices: [{
        index,
        delta: deltas[i],
        logprobs: null,
        finish_reason: last ? finish : null,
        ...(last && finish !== null ? { stop_reason: out.stopReason ?? null } : {}),
      }],
      ...(usage && last ? { usage } : {}),
    });
  }
}
