// Engine TokenLogprobs -> the two OpenAI wire shapes.
// Completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset} (the sampled token
// is included in each top_logprobs dict, as vLLM does). Chat: {content: [{token, logprob, bytes,
// top_logprobs: [{token, logprob, bytes}]}]}.
// Token strings are the text each token adds where it stands (decoded in the context of the tokens before
// it, as vLLM's detokenizer does), so SentencePiece tokens keep their leading spaces, the sampled tokens
// concatenate to the generated text and text_offset indexes it. A token that ends inside a UTF-8 sequence
// adds "" and the token that completes it adds the whole character. Candidates of one top_logprobs dict
// that would print alike are all kept: a clash falls back to the raw vocabulary piece, then to token_id:N.
import type { TokenLogprob } from '../engine/protocol.js';
import type { Tokenizer } from '../tokenizer/types.js';

const clamp = (lp: number) => (Number.isFinite(lp) ? lp : -9999.0);
/** Tokens of context decoded before each token: enough for any tokenizer's merges across a boundary. */
const WINDOW = 6;

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

/** A token decoded alone, specials kept (the /tokenize token_strs view; not for logprobs, see LogprobText). */
export function logprobsTokenText(tok: Tokenizer, id: number, asIds = false): string {
  return asIds ? `token_id:${id}` : tok.decode([id], { skipSpecialTokens: false });
}

const stripPartial = (s: string) => s.replace(/\uFFFD+$/, '');

/**
 * Token texts in context. One per choice: feed the prompt ids at construction, then each chunk of
 * logprobs in order (the sampled ids become context for the next ones).
 */
export class LogprobText {
  private readonly context: number[];
  constructor(private readonly tok: Tokenizer, promptIds: ArrayLike<number>, private readonly asIds = false) {
    this.context = Array.from(promptIds).slice(-WINDOW);
  }

  private decode(ids: number[]): string {
    return this.tok.decode(ids, { skipSpecialTokens: false, cleanUpTokenizationSpaces: false });
  }

  /** What `id` adds after the current context, whose own text (partial characters dropped) is `before`. */
  private textAfter(id: number, before: string): string {
    if (this.asIds) return `token_id:${id}`;
    if (this.tok.isSpecial(id) || !this.context.length) return this.decode([id]);
    const after = stripPartial(this.decode([...this.context, id]));
    return after.startsWith(before) ? after.slice(before.length) : this.decode([id]);
  }

  /** Texts of the sampled token and its candidates; then the sampled id joins the context. */
  next(lp: TokenLogprob): { token: string; top: Array<{ id: number; token: string; logprob: number }> } {
    const before = this.asIds || !this.context.length ? '' : stripPartial(this.decode(this.context)); // once per step
    const token = this.textAfter(lp.tokenId, before);
    const top = lp.top.map((e) => ({ id: e.tokenId, token: e.tokenId === lp.tokenId ? token : this.textAfter(e.tokenId, before), logprob: e.logprob }));
    this.context.push(lp.tokenId);
    if (this.context.length > WINDOW) this.context.shift();
    return { token, top };
  }

  /** A dict key for a candidate whose text another candidate already took. */
  distinctKey(id: number, taken: Record<string, number>): string {
    const piece = this.tok.idToToken(id);
    if (piece !== undefined && !(piece in taken)) return piece;
    return `token_id:${id}`;
  }
}

/** Completion-style logprobs; `offset` is the text offset of the first token (cumulative in streams). */
export function completionLogprobs(text: LogprobText, lps: TokenLogprob[], offset: number): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const lp of lps) {
    const { token, top } = text.next(lp);
    out.tokens.push(token);
    out.token_logprobs.push(clamp(lp.logprob));
    const dict: Record<string, number> = { [token]: clamp(lp.logprob) };
    for (const e of top) {
      if (e.id === lp.tokenId) continue;
      const key = e.token in dict ? text.distinctKey(e.id, dict) : e.token;
      dict[key] = clamp(e.logprob);
    }
    out.top_logprobs.push(dict);
    out.text_offset.push(at);
    at += token.length;
  }
  return out;
}

/** Text length the tokens of one completionLogprobs result span, to continue text_offset in the next chunk. */
export function logprobsTextLength(lp: CompletionLogprobs): number {
  return lp.tokens.reduce((n, t) => n + t.length, 0);
}

export interface ChatLogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export function chatLogprobs(text: LogprobText, lps: TokenLogprob[]): { content: ChatLogprobEntry[] } {
  const entry = (token: string, logprob: number) => ({ token, logprob: clamp(logprob), bytes: [...Buffer.from(token, 'utf8')] });
  return {
    content: lps.map((lp) => {
      const { token, top } = text.next(lp);
      return { ...entry(token, lp.logprob), top_logprobs: top.map((e) => entry(e.token, e.logprob)) };
    }),
  };
}
