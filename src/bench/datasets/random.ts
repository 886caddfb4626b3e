// vLLM's RandomDataset: lengths uniform in [floor(L(1-r)), ceil(L(1+r))], a shared random prefix,
// then per request i the ids allowed[(offset_i + i + k) % |allowed|] for k < input_len, decoded to
// text and re-encoded until the token count matches (decodeToTargetLen).
// Lengths, offsets and the prefix come from one seeded stream in vLLM's order; the ids that pad a
// short re-encoding come from a per-request stream (seed, i), so prompts can be built in parallel
// (random-parallel.ts) and still be identical for the same seed.
import { Rng } from '../../util/rng.js';
import type { SampleRequest } from '../types.js';
import type { Tokenizer } from '../../tokenizer/types.js';
import { allowedTokenIds, decodeToTargetLen, numSpecialTokensToAdd } from './prompt-tokens.js';

export interface RandomOptions {
  numRequests: number;
  inputLen: number; // --random-input-len (1024)
  outputLen: number; // --random-output-len (128)
  rangeRatio: number; // --random-range-ratio (0), in [0, 1)
  prefixLen: number; // --random-prefix-len (0)
  seed: number;
}

/** Everything but the prompt text: cheap, sequential, deterministic. */
export interface RandomPlan {
  inputLens: number[];
  outputLens: number[];
  offsets: number[];
  prefix: number[];
  allowed: number[];
  seed: number;
}

export function planRandom(tok: Tokenizer, o: RandomOptions): RandomPlan {
  if (!(o.rangeRatio >= 0 && o.rangeRatio < 1)) throw new RangeError('--random-range-ratio must be in [0, 1)');
  const rng = new Rng(o.seed);
  const realInputLen = Math.max(0, o.inputLen - numSpecialTokensToAdd(tok));
  const inLo = Math.floor(realInputLen * (1 - o.rangeRatio));
  const inHi = Math.ceil(realInputLen * (1 + o.rangeRatio));
  const outLo = Math.max(1, Math.floor(o.outputLen * (1 - o.rangeRatio)));
  const outHi = Math.max(1, Math.ceil(o.outputLen * (1 + o.rangeRatio)));
  if (o.prefixLen + inLo < 1) {
    throw new RangeError(`--random-input-len is too small: the minimum total input (prefix + sampled) is ${o.prefixLen + inLo}; increase --random-input-len or --random-prefix-len`);
  }
  const inputLens = Array.from({ length: o.numRequests }, () => rng.integers(inLo, inHi + 1));
  const outputLens = Array.from({ length: o.numRequests }, () => rng.integers(outLo, outHi + 1));
  const offsets = Array.from({ length: o.numRequests }, () => rng.integers(0, tok.vocabSize));
  const allowed = allowedTokenIds(tok);
  const prefix = Array.from({ length: o.prefixLen }, () => allowed[rng.integers(0, allowed.length)]!);
  return { inputLens, outputLens, offsets, prefix, allowed, seed: o.seed };
}

/** Prompt i of a plan: {prompt, promptLen, mismatch}. */
export function buildRandomPrompt(tok: Tokenizer, p: RandomPlan, i: number): { prompt: string; promptLen: number; mismatch: number } {
  const n = p.inputLens[i]!;
  const seq = p.prefix.slice();
  for (let k = 0; k < n; k++) seq.push(p.allowed[(p.offsets[i]! + i + k) % p.allowed.length]!);
  const pad = new Rng(Math.imul(p.seed ^ 0x5bd1e995, 0x9e3779b1) + i);
  const r = decodeToTargetLen(tok, seq, p.prefix.length + n, pad, p.allowed);
  return { prompt: r.prompt, promptLen: r.ids.length, mismatch: r.mismatch };
}

export function sampleRandom(tok: Tokenizer, o: RandomOptions): { requests: SampleRequest[]; mismatch: number } {
  const plan = planRandom(tok, o);
  const requests: SampleRequest[] = [];
  let mismatch = 0;
  for (let i = 0; i < o.numRequests; i++) {
    const r = buildRandomPrompt(tok, plan, i);
    mismatch += r.mismatch;
    requests.push({ prompt: r.prompt, promptLen: r.promptLen, expectedOutputLen: plan.outputLens[i]! });
  }
  return { requests, mismatch };
}
