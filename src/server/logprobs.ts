// Engine TokenLogprobs -> the two OpenAI wire shapes.
// Completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset} (the sampled token
// is included in each top_logprobs dict, as vLLM does). Chat: {content: [{token, logprob, bytes,
// top_logprobs: [{token, logprob, bytes}]}]}. Token strings are each id decoded alone, specials kept.
import type { TokenLogprob } from '../engine/protocol.js';
import type { Tokenizer } from '../tokenizer/types.js';

const clamp = (lp: number) => (Number.isFinite(lp) ? lp : -9999.0);

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

/** A token's text: the id decoded alone, or `token_id:<id>` with vLLM's return_tokens_as_token_ids. */
export function logprobsTokenText(tok: Tokenizer, id: number, asIds = false): string {
  return asIds ? `token_id:${id}` : tok.decode([id], { skipSpecialTokens: false });
}

/** Builds completion-style logprobs; `offset` is the text offset of the first token (cumulative in streams). */
export function completionLogprobs(tok: Tokenizer, lps: TokenLogprob[], offset: number, asIds = false): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const lp of lps) {
    const t = logprobsTokenText(tok, lp.tokenId, asIds);
    out.tokens.push(t);
    out.token_logprobs.push(clamp(lp.logprob));
    const top: Record<string, number> = {};
    for (const e of lp.top) top[logprobsTokenText(tok, e.tokenId, asIds)] = clamp(e.logprob);
    if (!(t in top)) top[t] = clamp(lp.logprob);
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += t.length;
  }
  return out;
}

/** Text length the tokens of `lps` span, to continue text_offset in the next chunk. */
export function logprobsTextLength(tok: Tokenizer, lps: TokenLogprob[], asIds = false): number {
  return lps.reduce((n, lp) => n + logprobsTokenText(tok, lp.tokenId, asIds).length, 0);
}

export interface ChatLogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export function chatLogprobs(tok: Tokenizer, lps: TokenLogprob[], asIds = false): { content: ChatLogprobEntry[] } {
  const entry = (id: number, logprob: number) => {
    const token = logprobsTokenText(tok, id, asIds);
    return { token, logprob: clamp(logprob), bytes: [...Buffer.from(token, 'utf8')] };
  };
  return {
    content: lps.map((lp) => ({ ...entry(lp.tokenId, lp.logprob), top_logprobs: lp.top.map((e) => entry(e.tokenId, e.logprob)) })),
  };
}
