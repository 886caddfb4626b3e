// Streaming form of the marker-based tool-call formats (hermes, mistral, llama3_json): text in as the model
// writes it, events out as soon as they are certain:
//   content  text before the first call (a tail that could begin the marker, and trailing whitespace, are
//            held back until the next text decides); text between and after calls is dropped, as parse()
//            drops it
//   call     a call's name (index counts calls from 0), once its JSON string is complete
//   args     fragments of its arguments JSON (json-call-scanner.ts: whitespace outside strings dropped)
// Layouts (after `marker`, found anywhere, or only at the start for llama3_json):
//   hermes       <tool_call> OBJ </tool_call> ... <tool_call> OBJ </tool_call>
//   mistral      [TOOL_CALLS] [OBJ, OBJ]   (or a single OBJ)
//   llama3_json  [<|python_tag|>] OBJ ; OBJ ...
// A first call that does not scan as a call object turns the whole text into content (as parse() does);
// one that breaks after calls were sent ends the calls (what was sent stays sent).
import { JsonCallScanner, type ScanEvent } from './json-call-scanner.js';

export type ToolStreamEvent =
  | { kind: 'content'; text: string }
  | { kind: 'call'; index: number; name: string }
  | { kind: 'args'; index: number; text: string };

export interface ToolCallStream {
  push(text: string): ToolStreamEvent[];
  /** The held-back text, once the output is complete. */
  end(): ToolStreamEvent[];
}

export type CallLayout = 'hermes' | 'mistral' | 'llama3_json';

const MARKERS: Record<CallLayout, string> = { hermes: '<tool_call>', mistral: '[TOOL_CALLS]', llama3_json: '<|python_tag|>' };
const HERMES_CLOSE = '</tool_call>';

type State = 'seek' | 'list' | 'object' | 'between' | 'plain' | 'drop';

export class CallStream implements ToolCallStream {
  private text = '';
  private pos = 0; // text before pos has been decided
  private sent = 0; // text before sent went out as content
  private state: State = 'seek';
  private scanner: JsonCallScanner | null = null;
  private calls = 0;
  private named = false; // the current call's name was sent
  private listOpen = false; // mistral: inside [...]
  private readonly marker: string;

  constructor(private readonly layout: CallLayout) {
    this.marker = MARKERS[layout];
  }

  push(delta: string): ToolStreamEvent[] {
    this.text += delta;
    return this.run(false);
  }

  end(): ToolStreamEvent[] {
    const out = this.run(true);
    // the output ended inside (or just after the marker of) a first call that never got its name: text
    if ((this.state === 'object' || this.state === 'list') && this.calls === 0 && !this.named) out.push(...this.toPlain());
    if ((this.state === 'seek' || this.state === 'plain') && this.calls === 0 && this.pos < this.text.length) {
      out.push({ kind: 'content', text: this.text.slice(this.pos) });
      this.pos = this.text.length;
    }
    return out;
  }

  private run(final: boolean): ToolStreamEvent[] {
    const out: ToolStreamEvent[] = [];
    for (;;) {
      const before = this.pos;
      const st = this.state;
      if (st === 'seek') this.seek(out, final);
      else if (st === 'list') this.list();
      else if (st === 'object') this.object(out);
      else if (st === 'between') this.between();
      else if (st === 'plain') {
        if (this.pos < this.text.length) out.push({ kind: 'content', text: this.text.slice(this.pos) });
        this.pos = this.text.length;
      } else this.pos = this.text.length; // drop
      if (this.pos === before && this.state === st) return out;
    }
  }

  /** Before a call (or, hermes, between blocks): content (before the first call only) up to the marker. */
  private seek(out: ToolStreamEvent[], final: boolean): void {
    const rest = this.text.slice(this.pos);
    if (this.layout === 'llama3_json') {
      // calls only at the start: [<|python_tag|>] {
      const t = rest.trimStart();
      if (!t) return;
      if (t.startsWith(this.marker)) {
        this.pos = this.text.length - t.length + this.marker.length;
        this.startObject();
      } else if (t.startsWith('{')) {
        this.pos = this.text.length - t.length;
        this.startObject();
      } else if (!this.marker.startsWith(t)) this.state = 'plain';
      return;
    }
    const at = rest.indexOf(this.marker);
    let end = at >= 0 ? at : rest.length;
    if (at < 0 && !final) {
      for (let k = Math.min(this.marker.length - 1, rest.length); k > 0; k--) {
        if (this.marker.startsWith(rest.slice(rest.length - k))) {
          end = rest.length - k;
          break;
        }
      }
    }
    // trailing whitespace waits: it is dropped when a call follows
    let c = rest.slice(0, end);
    if (at >= 0 || !final) c = c.replace(/\s+$/, '');
    if (this.calls === 0 && c.length) {
      out.push({ kind: 'content', text: c });
      this.sent = this.pos + c.length;
    }
    if (at >= 0 && this.layout === 'mistral' && this.calls === 0) {
      this.pos += at + this.marker.length;
      this.state = 'list';
    } else if (at >= 0) {
      this.pos += at + this.marker.length;
      this.startObject();
    } else this.pos += this.calls === 0 ? c.length : end;
  }

  private startObject(): void {
    this.state = 'object';
    this.scanner = new JsonCallScanner();
    this.named = false;
  }

  /** mistral, after its marker: a list of calls, or one call object. */
  private list(): void {
    const t = this.text.slice(this.pos).trimStart();
    if (!t) return;
    this.pos = this.text.length - t.length;
    if (t[0] === '[') {
      this.listOpen = true;
      this.pos++;
      this.startObject();
    } else if (t[0] === '{') this.startObject();
    else this.toPlain();
  }

  private object(out: ToolStreamEvent[]): void {
    const s = this.scanner!;
    const evs: ScanEvent[] = [];
    this.pos += s.push(this.text.slice(this.pos), evs);
    for (const e of evs) {
      if (e.kind === 'name') {
        this.named = true;
        out.push({ kind: 'call', index: this.calls, name: e.name });
      } else out.push({ kind: 'args', index: this.calls, text: e.text });
    }
    if (s.state === 'done') {
      this.calls++;
      this.state = 'between';
    } else if (s.state === 'error') {
      if (this.calls === 0 && !this.named) out.push(...this.toPlain());
      else this.state = 'drop';
    }
  }

  /** After a call object: what may come next in this layout. */
  private between(): void {
    const rest = this.text.slice(this.pos);
    const t = rest.trimStart();
    if (!t) return;
    const skip = rest.length - t.length;
    if (this.layout === 'hermes') {
      if (t.startsWith(HERMES_CLOSE)) {
        this.pos += skip + HERMES_CLOSE.length;
        this.state = 'seek';
      } else if (!HERMES_CLOSE.startsWith(t)) this.state = 'drop';
      return;
    }
    const sep = this.layout === 'mistral' ? ',' : ';';
    if (t[0] === sep && (this.layout !== 'mistral' || this.listOpen)) {
      this.pos += skip + 1;
      this.startObject();
    } else this.state = 'drop'; // ']' or anything else ends the calls
  }

  /** The first call is not a call: everything not yet sent is text. */
  private toPlain(): ToolStreamEvent[] {
    this.state = 'plain';
    this.scanner = null;
    this.pos = this.sent;
    return [];
  }
}
