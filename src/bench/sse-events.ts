// Streamed-response bookkeeping kept cheap on the hot path: the reader only splits the byte stream
// into SSE events and stamps each with performance.now(); JSON parsing happens once the request is
// over (`interpretEvents`), so per-chunk work is a string append and an indexOf.
export class SseSplitter {
  readonly events: string[] = [];
  readonly times: number[] = []; // ms, performance.now()
  private buf = '';

  /** Feed one decoded chunk that arrived at time `t`. */
  push(chunk: string, t: number): void {
    let buf = this.buf + chunk;
    if (buf.indexOf('\r') !== -1) buf = buf.replace(/\r\n?/g, '\n');
    let start = 0;
    for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n', start)) {
      if (i > start) {
        this.events.push(buf.slice(start, i));
        this.times.push(t);
      }
      start = i + 2;
    }
    this.buf = start ? buf.slice(start) : buf;
  }

  /** A final event without the blank-line terminator still counts. */
  end(t: number): void {
    if (this.buf.trim()) {
      this.events.push(this.buf);
      this.times.push(t);
    }
    this.buf = '';
  }
}

export interface InterpretedStream {
  /** performance.now() ms of each chunk that carried content. */
  contentTimes: number[];
  text: string;
  completionTokens: number; // 0 when no usage arrived
  promptTokens: number | null;
  error: string | null; // an in-stream {"error": ...} event
}

/** Parse the recorded events: content chunks (choices[0].text, or delta.content/reasoning_content for chat), usage, errors. */
export function interpretEvents(events: readonly string[], times: readonly number[], chat: boolean): InterpretedStream {
  const out: InterpretedStream = { contentTimes: [], text: '', completionTokens: 0, promptTokens: null, error: null };
  const parts: string[] = [];
  for (let i = 0; i < events.length; i++) {
    let data = '';
    for (const line of events[i]!.split('\n')) {
      if (line.startsWith('data:')) data += data ? '\n' + line.slice(5).trimStart() : line.slice(5).trimStart();
    }
    if (!data || data === '[DONE]') continue;
    let obj: any;
    try {
      obj = JSON.parse(data);
    } catch {
      out.error ??= `malformed SSE data: ${data.slice(0, 120)}`;
      continue;
    }
    if (obj?.error) {
      out.error ??= typeof obj.error === 'string' ? obj.error : obj.error.message ?? JSON.stringify(obj.error);
      continue;
    }
    const c = obj?.choices?.[0];
    if (c) {
      const piece = chat ? (c.delta?.content ?? c.delta?.reasoning_content ?? c.delta?.reasoning) : c.text;
      if (typeof piece === 'string' && piece.length) {
        out.contentTimes.push(times[i]!);
        parts.push(piece);
      }
    }
    const u = obj?.usage;
    if (u && typeof u === 'object') {
      if (typeof u.completion_tokens === 'number') out.completionTokens = u.completion_tokens;
      if (typeof u.prompt_tokens === 'number') out.promptTokens = u.prompt_tokens;
    }
  }
  out.text = parts.join('');
  return out;
}
