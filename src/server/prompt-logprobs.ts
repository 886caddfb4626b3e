// Prompt logprobs on the wire. vLLM's prompt_logprobs: per prompt token, null for the first, else
// {token id: {logprob, rank, decoded_token}} holding the prompt token and the top k at its position.
// Completions echo with logprobs: the prompt's tokens lead the choice's logprobs (the first token's
// logprob and top_logprobs null), their text_offset indexing the echoed text.
import type { PromptLogprob } from '../engine/protocol.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { badRequest } from './http-errors.js';
import type { CompletionLogprobs } from './logprobs.js';

const clamp = (lp: number) => (Number.isFinite(lp) ? lp : -9999.0);
/** tokens of context decoded before each prompt token (as logprobs.ts) */
const WINDOW = 6;

export type VllmPromptLogprobs = Array<Record<string, { logprob: number; rank: number; decoded_token: string }> | null>;

export function vllmPromptLogprobs(tok: Tokenizer, pls: ReadonlyArray<PromptLogprob | null>, k: number): VllmPromptLogprobs {
  const decoded = (id: number) => tok.decode([id], { skipSpecialTokens: false });
  return pls.map((pl) => {
    if (!pl) return null;
    const d: Record<string, { logprob: number; rank: number; decoded_token: string }> = {
      [pl.tokenId]: { logprob: clamp(pl.logprob), rank: pl.rank, decoded_token: decoded(pl.tokenId) },
    };
    pl.top.slice(0, k).forEach((e, i) => {
      if (!(e.tokenId in d)) d[e.tokenId] = { logprob: clamp(e.logprob), rank: i + 1, decoded_token: decoded(e.tokenId) };
    });
    return d;
  });
}

/** Echo logprobs: nullable where the first prompt token has no logprob (OpenAI's shape). */
export interface EchoLogprobs {
  tokens: string[];
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}

/**
 * The prompt's part of echo logprobs. Token strings are what each token adds to the prompt's text
 * (decoded after the tokens before it, special tokens skipped), so they concatenate to the echoed text and
 * text_offset indexes it; a special token (BOS) shows as itself and spans nothing.
 */
export function echoPromptLogprobs(
  tok: Tokenizer, promptIds: readonly number[], pls: ReadonlyArray<PromptLogprob | null>, k: number, echoText: string, asIds: boolean,
): EchoLogprobs {
  const decode = (ids: number[]) => tok.decode(ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: false }).replace(/\uFFFD+$/, '');
  const out: EchoLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  const ctx: number[] = [];
  let at = 0;
  promptIds.forEach((id, i) => {
    const before = asIds ? '' : decode(ctx);
    const textOf = (x: number): string => {
      if (asIds) return `token_id:${x}`;
      if (tok.isSpecial(x)) return tok.decode([x], { skipSpecialTokens: false });
      const after = decode([...ctx, x]);
      return after.startsWith(before) ? after.slice(before.length) : tok.decode([x], { skipSpecialTokens: true });
    };
    const token = textOf(id);
    out.tokens.push(token);
    out.text_offset.push(at);
    if (!tok.isSpecial(id) && echoText.startsWith(token, at)) at += token.length;
    const pl = pls[i] ?? null;
    if (!pl) {
      out.token_logprobs.push(null);
      out.top_logprobs.push(null);
    } else {
      out.token_logprobs.push(clamp(pl.logprob));
      const dict: Record<string, number> = { [token]: clamp(pl.logprob) };
      for (const e of pl.top.slice(0, k)) {
        if (e.tokenId === id) continue;
        const t = textOf(e.tokenId);
        dict[t in dict ? distinctKey(tok, e.tokenId, dict) : t] = clamp(e.logprob);
      }
      out.top_logprobs.push(dict);
    }
    ctx.push(id);
    if (ctx.length > WINDOW) ctx.shift();
  });
  return out;
}

function distinctKey(tok: Tokenizer, id: number, taken: Record<string, number>): string {
  const piece = tok.idToToken(id);
  return piece !== undefined && !(piece in taken) ? piece : `token_id:${id}`;
}

export function joinLogprobs(a: EchoLogprobs, b: CompletionLogprobs): EchoLogprobs {
  return {
    tokens: [...a.tokens, ...b.tokens],
    token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
    top_logprobs: [...a.top_logprobs, ...b.top_logprobs],
    text_offset: [...a.text_offset, ...b.text_offset],
  };
}

/** prompt_logprobs (0..maxLogprobs; not with stream, as vLLM) -> k, or null when absent. */
export function promptLogprobsK(f: { prompt_logprobs?: number | null; stream?: boolean | null }, maxLogprobs: number): number | null {
  const k = f.prompt_logprobs;
  if (k == null) return null;
  if (k < 0) throw badRequest(`prompt_logprobs must be non-negative, got ${k}.`, 'prompt_logprobs');
  if (k > maxLogprobs) throw badRequest(`Requested prompt logprobs of ${k}, which is greater than max allowed: ${maxLogprobs}`, 'prompt_logprobs');
  if (f.stream) throw badRequest('`prompt_logprobs` are not available when `stream=True`.', 'prompt_logprobs');
  return k;
}
