// Chat-shaped output deltas (content text, tool-call headers and argument fragments: tools/tool-output.ts
// ChatDelta) -> the Responses API's streaming events and output items, in the openai SDK's shapes:
//   message:       response.output_item.added {item: message in_progress}, response.content_part.added,
//                  response.output_text.delta..., then response.output_text.done, response.content_part.done,
//                  response.output_item.done {item: message with its text}
//   function_call: response.output_item.added {item: function_call, arguments ""},
//                  response.function_call_arguments.delta..., then response.function_call_arguments.done
//                  {name, arguments}, response.output_item.done {item with its arguments}
// One item is open at a time; a delta of another kind (or another call) closes it. output_index counts
// items in order. Events carry no type / sequence_number (the writer adds them).
import type { ChatDelta } from './tools/tool-output.js';
import { functionCallItem, type FunctionCallItem } from './responses-tools.js';

export type ResponseEvent = [type: string, data: Record<string, unknown>];

export interface MessageItem {
  type: 'message';
  id: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  role: 'assistant';
  content: Array<{ type: 'output_text'; text: string; annotations: never[] }>;
}
export type OutputItem = MessageItem | FunctionCallItem;

export const messageItem = (id: string, text: string, status: MessageItem['status']): MessageItem => ({
  type: 'message', id, status, role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }],
});

export class ResponseOutputBuilder {
  readonly output: OutputItem[] = [];
  private open: { kind: 'message'; text: string } | { kind: 'call'; item: FunctionCallItem } | null = null;
  private messages = 0;

  constructor(private readonly messageId: (n: number) => string) {}

  /** Opens an (empty) message item now: text-only responses always have one. */
  startMessage(): ResponseEvent[] {
    return this.openMessage();
  }

  push(d: ChatDelta): ResponseEvent[] {
    const ev: ResponseEvent[] = [];
    if ('content' in d && d.content) {
      if (this.open?.kind !== 'message') ev.push(...this.close('completed'), ...this.openMessage());
      const o = this.open as { kind: 'message'; text: string };
      o.text += d.content;
      ev.push(['response.output_text.delta', { item_id: this.current().id, output_index: this.output.length - 1, content_index: 0, delta: d.content, logprobs: [] }]);
    }
    if ('tool_calls' in d) {
      for (const t of d.tool_calls) {
        if (t.id) {
          ev.push(...this.close('completed'));
          const item = functionCallItem(t.function.name ?? '', '', 'in_progress');
          this.output.push({ ...item });
          this.open = { kind: 'call', item };
          ev.push(['response.output_item.added', { output_index: this.output.length - 1, item: { ...item } }]);
        }
        if (t.function.arguments && this.open?.kind === 'call') {
          this.open.item.arguments += t.function.arguments;
          ev.push(['response.function_call_arguments.delta', { item_id: this.open.item.id, output_index: this.output.length - 1, delta: t.function.arguments }]);
        }
      }
    }
    return ev;
  }

  /** Closes the open item (status for it: completed, or incomplete when the output was cut). */
  finish(status: 'completed' | 'incomplete'): ResponseEvent[] {
    return this.close(status);
  }

  private current(): OutputItem {
    return this.output[this.output.length - 1]!;
  }

  private openMessage(): ResponseEvent[] {
    const item = messageItem(this.messageId(this.messages++), '', 'in_progress');
    this.output.push(item);
    this.open = { kind: 'message', text: '' };
    const i = this.output.length - 1;
    return [
      ['response.output_item.added', { output_index: i, item: { ...item, content: [] } }],
      ['response.content_part.added', { item_id: item.id, output_index: i, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }],
    ];
  }

  private close(status: 'completed' | 'incomplete'): ResponseEvent[] {
    const o = this.open;
    if (!o) return [];
    this.open = null;
    const i = this.output.length - 1;
    if (o.kind === 'message') {
      const item = messageItem(this.current().id, o.text, status);
      this.output[i] = item;
      return [
        ['response.output_text.done', { item_id: item.id, output_index: i, content_index: 0, text: o.text, logprobs: [] }],
        ['response.content_part.done', { item_id: item.id, output_index: i, content_index: 0, part: item.content[0]! }],
        ['response.output_item.done', { output_index: i, item }],
      ];
    }
    const item: FunctionCallItem = { ...o.item, status };
    this.output[i] = item;
    return [
      ['response.function_call_arguments.done', { item_id: item.id, output_index: i, name: item.name, arguments: item.arguments }],
      ['response.output_item.done', { output_index: i, item }],
    ];
  }
}
