// Token-id helpers shared by the synthetic workloads (vLLM datasets/utils.py).
import type { Rng } from '../../util/rng.js';
import type { Tokenizer } from '../../tokenizer/types.js';

/** Ids a synthetic prompt may use: the whole vocabulary minus special tokens. */
export function allowedTokenIds(tok: Tokenizer): number[] {
  const out: number[] = [];
  for (let id = 0; id < tok.vocabSize; id++) if (!tok.isSpecial(id)) out.push(id);
  if (!out.length) throw new Error('tokenizer has no non-special tokens');
  return out;
}

/** How many special tokens encode() adds (HF num_special_tokens_to_add, e.g. 1 for a BOS). */
export function numSpecialTokensToAdd(tok: Tokenizer): number {
  return Math.max(0, tok.encode('x').length - tok.encode('x', { addSpecialTokens: false }).length);
}

/**
 * vLLM's gen_prompt_decode_to_target_len: decode, re-encode (no special tokens), then truncate or pad
 * with random ids and retry (up to maxRetry) until the re-encoded length equals target.
 * Returns the final prompt text, its token ids and the residual mismatch (len - target, 0 when met).
 * One deviation: padding ids come from `allowed` (vLLM draws from the whole vocabulary, which can
 * splice special-token text such as "<|im_end|>" into a prompt).
 */
export function decodeToTargetLen(
  tok: Tokenizer, seq: number[], target: number, rng: Rng, allowed: readonly number[], maxRetry = 10,
): { prompt: string; ids: number[]; mismatch: number } {
  let ids = seq;
  let prompt = '';
  for (let tries = maxRetry; ; tries--) {
    prompt = tok.decode(ids);
    ids = tok.encode(prompt, { addSpecialTokens: false });
    if (tries <= 0) return { prompt, ids, mismatch: ids.length - target };
    if (ids.length === target) return { prompt, ids, mismatch: 0 };
    if (ids.length < target) {
      while (ids.length < target) ids.push(allowed[rng.integers(0, allowed.length)]!);
    } else {
      ids = ids.slice(0, target);
    }
  }
}
