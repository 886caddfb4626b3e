// Streaming detokenization with vLLM-style prefix/read offsets: each push decodes only a short window
// tokens[prefix..] and emits the text beyond what was already emitted, holding back a tail that ends in
// U+FFFD (a UTF-8 sequence split across tokens) until the bytes that complete it arrive.
import type { Tokenizer } from './types.js';

const REPLACEMENT = '\uFFFD';
/** Prompt tokens kept as left context (vLLM's INITIAL_INCREMENTAL_DETOKENIZATION_OFFSET). */
const PROMPT_CONTEXT = 5;
/** Pending tokens after which a window still ending in U+FFFD is resynchronised or given up on. */
const MAX_PENDING = 8;

export interface IncrementalDetokenizerOptions {
  /** Default true, as vLLM's skip_special_tokens. */
  skipSpecialTokens?: boolean;
  /**
   * Last prompt tokens, used only as left context so the first generated token decodes as it would
   * mid-text (e.g. SentencePiece's leading space is kept, as vLLM does).
   */
  promptIds?: ArrayLike<number>;
}

export class IncrementalDetokenizer {
  private readonly tokens: number[] = [];
  private prefixOffset = 0; // window start
  private readOffset = 0; // tokens[prefixOffset:readOffset] decode to prefixText, all emitted
  private prefixText = '';
  private extraEmitted = 0; // chars of the window's text beyond prefixText already emitted
  private readonly skipSpecialTokens: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    opts: IncrementalDetokenizerOptions = {},
  ) {
    this.skipSpecialTokens = opts.skipSpecialTokens ?? true;
    const prompt = opts.promptIds ? Array.from(opts.promptIds) : [];
    this.tokens.push(...prompt.slice(Math.max(0, prompt.length - PROMPT_CONTEXT)));
    this.readOffset = this.tokens.length;
    this.prefixText = this.decode(0, this.readOffset);
  }

  /** Appends generated ids; returns the newly completed text (possibly ""). */
  push(ids: ArrayLike<number>): string {
    for (let i = 0; i < ids.length; i++) this.tokens.push(ids[i]!);
    const full = this.decode(this.prefixOffset, this.tokens.length);
    const emittedEnd = this.prefixText.length + this.extraEmitted;
    if (!full.endsWith(REPLACEMENT)) {
      const delta = full.length > emittedEnd ? full.slice(emittedEnd) : '';
      this.advance(this.tokens.length);
      return delta;
    }
    // An incomplete UTF-8 tail decodes to exactly one trailing U+FFFD: emit up to it, keep the offsets.
    const safeEnd = full.length - 1;
    let delta = '';
    if (safeEnd > emittedEnd) {
      delta = full.slice(emittedEnd, safeEnd);
      this.extraEmitted += delta.length;
    }
    const pending = this.tokens.length - this.readOffset;
    if (pending > MAX_PENDING && !this.shrinkWindow(full)) {
      // Only invalid bytes keep the window open this long: let them out, keep a short left context.
      if (pending > 4 * MAX_PENDING) {
        delta += this.flush();
        this.prefixOffset = this.tokens.length - PROMPT_CONTEXT;
        this.prefixText = this.decode(this.prefixOffset, this.readOffset);
      }
    }
    return delta;
  }

  /** Emits whatever is held back (a trailing U+FFFD from bytes that never completed). */
  flush(): string {
    const full = this.decode(this.prefixOffset, this.tokens.length);
    const emittedEnd = this.prefixText.length + this.extraEmitted;
    const delta = full.length > emittedEnd ? full.slice(emittedEnd) : '';
    this.advance(this.tokens.length);
    return delta;
  }

  private decode(from: number, to: number): string {
    if (to <= from) return '';
    return this.tokenizer.decode(this.tokens.slice(from, to), {
      skipSpecialTokens: this.skipSpecialTokens,
      cleanUpTokenizationSpaces: false,
    });
  }

  /** Everything up to `to` is emitted: the old read window becomes the left context. */
  private advance(to: number): void {
    this.prefixOffset = this.readOffset;
    this.readOffset = to;
    this.prefixText = this.decode(this.prefixOffset, this.readOffset);
    this.extraEmitted = 0;
  }

  /**
   * Too many tokens pending while the text keeps ending mid-character (each token completing one
   * character and starting the next): restart the window at a later token s. UTF-8 is self-synchronising,
   * so decode(tokens[s:]) equals the current window's text from some point on; when that common tail
   * covers the last emitted character (a real one, not U+FFFD), the emitted position maps across.
   */
  private shrinkWindow(full: string): boolean {
    const emittedEnd = this.prefixText.length + this.extraEmitted;
    if (emittedEnd < 2 || full[emittedEnd - 1] === REPLACEMENT) return false;
    const need = full.length - emittedEnd + 2; // the held tail plus the last emitted char (maybe a pair)
    const n = this.tokens.length;
    for (let s = n - 1; s > this.readOffset; s--) {
      const text = this.decode(s, n);
      if (text.length < need) continue;
      let m = 0;
      while (m < text.length && m < full.length && text[text.length - 1 - m] === full[full.length - 1 - m]) m++;
      if (m < need) continue;
      this.prefixOffset = s;
      this.readOffset = s;
      this.prefixText = '';
      this.extraEmitted = emittedEnd - (full.length - text.length);
      return true;
    }
    return false;
  }
}
