// Request fields of parallel sampling and logit_bias, checked at the edge with vLLM's / OpenAI's rules.
// n choices per prompt come from one engine request (n sequences forked over one prefill); best_of
// candidates are generated the same way and the n with the highest cumulative logprob are returned
// (vLLM v0 semantics), so best_of needs the chosen tokens' logprobs even when the client did not ask.
import type { TokenLogprob } from '../engine/protocol.js';
import { badRequest } from './http-errors.js';
import type { RequestLimits } from './request-limits.js';

export interface ChoiceCounts {
  n: number; // choices returned per prompt
  bestOf: number; // sequences generated per prompt (>= n)
}

/** n and best_of; `numPrompts` bounds prompts × best_of by limits.maxSequencesPerRequest. */
export function choiceCounts(
  f: { n?: number | null; best_of?: number | null; stream?: boolean | null }, numPrompts: number, limits: RequestLimits,
): ChoiceCounts {
  const n = f.n ?? 1;
  if (n < 1) throw badRequest(`n must be at least 1, got ${n}.`, 'n');
  const bestOf = f.best_of ?? n;
  if (bestOf < n) throw badRequest(`best_of must be greater than or equal to n, got n=${n} and best_of=${bestOf}.`, 'best_of');
  if (bestOf > n && f.stream) throw badRequest('best_of > n is not supported with stream=true.', 'best_of');
  if (numPrompts * bestOf > limits.maxSequencesPerRequest) {
    const param = f.best_of != null && bestOf > n ? 'best_of' : 'n';
    throw badRequest(`at most ${limits.maxSequencesPerRequest} sequences are generated per request, ` +
      `got ${numPrompts} prompt(s) × ${bestOf}`, param);
  }
  return { n, bestOf };
}

/** The sum of the chosen tokens' logprobs (what best_of ranks by). */
export function cumulativeLogprob(logprobs: readonly TokenLogprob[]): number {
  let s = 0;
  for (const lp of logprobs) s += lp.logprob;
  return s;
}

/** Indices of the n candidates with the highest cumulative logprob, best first (ties: lower index). */
export function bestIndices(candidates: ReadonlyArray<{ logprobs: readonly TokenLogprob[] }>, n: number): number[] {
  const scored = candidates.map((c, i) => ({ i, s: cumulativeLogprob(c.logprobs) }));
  scored.sort((a, b) => b.s - a.s || a.i - b.i);
  return scored.slice(0, n).map((x) => x.i);
}

/**
 * logit_bias {token id (as a string): bias} -> [id, bias] pairs. Ids must be vocabulary ids; biases in
 * [-100, 100] (OpenAI's range). Undefined when absent or empty.
 */
export function parseLogitBias(bias: Record<string, number> | null | undefined, vocabSize: number): Array<[number, number]> | undefined {
  if (!bias) return undefined;
  const out: Array<[number, number]> = [];
  for (const [k, v] of Object.entries(bias)) {
    if (!/^\d{1,10}$/.test(k)) throw badRequest(`logit_bias keys must be token ids, got ${JSON.stringify(k.slice(0, 32))}.`, 'logit_bias');
    const id = Number(k);
    if (id >= vocabSize) throw badRequest(`token_id ${id} in logit_bias is out of vocabulary (size ${vocabSize}).`, 'logit_bias');
    if (!(typeof v === 'number' && v >= -100 && v <= 100)) throw badRequest(`logit_bias values must be in [-100, 100], got ${v} for token ${id}.`, 'logit_bias');
    if (v !== 0) out.push([id, v]);
  }
  return out.length ? out : undefined;
}
