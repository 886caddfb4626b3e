// Prompt logprobs (vLLM's prompt_logprobs; completions echo with logprobs): the model's log-probability of
// each prompt token given the tokens before it, with its rank and the top k at that position, from the
// raw logits of the position before it. Requests that want them skip the prefix cache and external KV
// (every prompt position must be computed) and compute at most maxPromptLogitsChunk tokens a step.
import type { PromptLogprob } from './protocol.js';
import { topK } from './sampler.js';

/** Floats of prompt logits one step may return for one request (64 MiB of float32). */
const PROMPT_LOGITS_FLOATS = 1 << 24;

export function maxPromptLogitsChunk(vocabSize: number): number {
  return Math.max(1, Math.floor(PROMPT_LOGITS_FLOATS / vocabSize));
}

/** Scores `tokenId` under one row of raw logits (not modified). */
export function promptLogprob(row: Float32Array, tokenId: number, k: number): PromptLogprob {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - m);
  const lse = m + Math.log(sum);
  const v = row[tokenId]!;
  let rank = 1;
  for (let i = 0; i < row.length; i++) if (row[i]! > v) rank++;
  return { tokenId, logprob: v - lse, rank, top: topK(row, k).map(([id, x]) => ({ tokenId: id, logprob: x - lse })) };
}
