// Incremental scanner for one tool call written as a JSON object {"name": "f", "arguments"|"parameters": {...}}
// (any key order, other keys skipped), fed characters as the model writes them. It reports the call's
// name as soon as its string is complete, and the arguments value as fragments while it is being written:
// whitespace outside strings dropped, so the fragments concatenate to what JSON.stringify gives for
// ordinary output (numbers and string escapes keep the model's spelling). Arguments written before the name
// are held until the name is known; arguments given as a JSON string are sent whole, decoded, at its end.
// State after each char: 'open' (inside the object), 'done' (its closing brace consumed), 'error'
// (not a call object: the caller decides what to do with the text).

export type ScanEvent = { kind: 'name'; name: string } | { kind: 'args'; text: string };

type Mode =
  | 'start' | 'key_or_end' | 'key' | 'colon' | 'value_start' | 'after_value'
  | 'name_str' | 'args' | 'skip' | 'done' | 'error';

export class JsonCallScanner {
  private mode: Mode = 'start';
  private key = '';
  private str = ''; // raw text of the string being read (key or name), escapes kept
  private escaped = false;
  // a value being read (args or skipped): nesting depth, inside a string, scalar text
  private depth = 0;
  private inStr = false;
  private valueIsString = false;
  private name: string | null = null;
  private pendingArgs = ''; // args text not sent yet (before the name, or a string value)
  private sawArgs = false;
  private argsDone = false;

  get state(): 'open' | 'done' | 'error' {
    return this.mode === 'done' ? 'done' : this.mode === 'error' ? 'error' : 'open';
  }

  /** Consumes text up to the object's end; returns how many chars were used (the rest is not the call's). */
  push(text: string, out: ScanEvent[]): number {
    let i = 0;
    for (; i < text.length && this.mode !== 'done' && this.mode !== 'error'; i++) {
      if (!this.step(text[i]!, out)) i--; // the char ended a scalar: read it again in the new mode
    }
    this.flushArgs(out);
    return i;
  }

  private flushArgs(out: ScanEvent[]): void {
    if (this.name === null || !this.pendingArgs || this.valueIsString) return;
    out.push({ kind: 'args', text: this.pendingArgs });
    this.pendingArgs = '';
  }

  /** false: `ch` was not consumed. */
  private step(ch: string, out: ScanEvent[]): boolean {
    const ws = ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t';
    switch (this.mode) {
      case 'start':
        if (ws) return true;
        this.mode = ch === '{' ? 'key_or_end' : 'error';
        return true;
      case 'key_or_end':
        if (ws || ch === ',') return true;
        if (ch === '}') return this.finish(out);
        if (ch === '"') {
          this.mode = 'key';
          this.str = '';
          return true;
        }
        this.mode = 'error';
        return true;
      case 'key':
      case 'name_str':
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') {
          const s = decode(this.str);
          if (s === null) this.mode = 'error';
          else if (this.mode === 'key') {
            this.key = s;
            this.mode = 'colon';
          } else {
            this.name = s;
            out.push({ kind: 'name', name: s });
            this.mode = 'after_value';
            if (this.argsDone) this.emitHeldArgs(out);
          }
          return true;
        }
        this.str += ch;
        return true;
      case 'colon':
        if (ws) return true;
        this.mode = ch === ':' ? 'value_start' : 'error';
        return true;
      case 'value_start':
        if (ws) return true;
        if (this.key === 'name') {
          if (ch !== '"' || this.name !== null) this.mode = 'error';
          else {
            this.mode = 'name_str';
            this.str = '';
          }
          return true;
        }
        this.depth = 0;
        this.inStr = false;
        this.escaped = false;
        if ((this.key === 'arguments' || this.key === 'parameters') && !this.sawArgs) {
          this.sawArgs = true;
          this.valueIsString = ch === '"';
          this.mode = 'args';
        } else this.mode = 'skip';
        return this.value(ch);
      case 'args':
      case 'skip':
        return this.value(ch);
      case 'after_value':
        if (ws) return true;
        if (ch === ',') {
          this.mode = 'key_or_end';
          return true;
        }
        if (ch === '}') return this.finish(out);
        this.mode = 'error';
        return true;
      default:
        return true;
    }
  }

  /** One char of a value (args: kept, minus whitespace outside strings). false: a scalar ended before `ch`. */
  private value(ch: string): boolean {
    const keep = this.mode === 'args';
    if (this.inStr) {
      if (this.escaped) this.escaped = false;
      else if (ch === '\\') this.escaped = true;
      else if (ch === '"') {
        this.inStr = false;
        if (this.depth === 0) return this.endValue(ch);
      }
      if (keep) this.pendingArgs += ch;
      return true;
    }
    if (ch === '"') this.inStr = true;
    else if (ch === '{' || ch === '[') this.depth++;
    else if (ch === '}' || ch === ']') {
      if (this.depth === 0) return this.endValue(null); // a scalar ends at the object's brace
      this.depth--;
      if (keep) this.pendingArgs += ch;
      return this.depth === 0 ? this.endValue(null, true) : true;
    } else if (ch === ',' && this.depth === 0) return this.endValue(null);
    else if (ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t') return true;
    else if (ch !== ':' && ch !== ',' && !/[-+.0-9a-zA-Z]/.test(ch)) {
      this.mode = 'error'; // not JSON (markup, say): never sent as arguments
      return true;
    }
    if (keep) this.pendingArgs += ch;
    return true;
  }

  /** The value ended: with its closing quote `ch` (consumed), its closing bracket (consumed), or before `ch`. */
  private endValue(quote: string | null, bracket = false): boolean {
    const wasArgs = this.mode === 'args';
    if (wasArgs && quote) this.pendingArgs += quote;
    this.mode = 'after_value';
    if (wasArgs) this.argsDone = true;
    return quote !== null || bracket;
  }

  private emitHeldArgs(out: ScanEvent[]): void {
    if (!this.valueIsString) return this.flushArgs(out);
    const s = decode(this.pendingArgs.slice(1, -1));
    this.pendingArgs = '';
    if (s === null) this.mode = 'error';
    else if (s) out.push({ kind: 'args', text: s });
  }

  private finish(out: ScanEvent[]): boolean {
    if (this.name === null || (this.sawArgs && !this.argsDone)) {
      this.mode = 'error';
      return true;
    }
    if (this.valueIsString) this.emitHeldArgs(out);
    else if (!this.sawArgs) out.push({ kind: 'args', text: '{}' });
    this.mode = 'done';
    return true;
  }
}

function decode(raw: string): string | null {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return null;
  }
}
