// Turns one row of logits into a token: logit_bias, penalties, min_tokens masking, then greedy or
// temperature / top-k / top-p / min-p sampling; logprobs from the raw logits (vLLM's default).
// Works in place on the row (a view into the runner's logits buffer). Also the step's sampling plan
// (which rows the backend samples) and the stop check after each sampled token.
import type { FinishReason, SamplingParams, TokenLogprob } from './protocol.js';
import type { Rng } from '../util/rng.js';
import type { SamplingPlan } from './model-runner.js';
import type { Sequence } from './sequence.js';
import { greedyRows } from '../native/binding.js';
import { applyBitmask } from '../structured/apply-bitmask.js';

export interface SampleContext {
  sampling: SamplingParams;
  promptTokenIds: readonly number[];
  outputCounts: ReadonlyMap<number, number>;
  numOutputTokens: number;
  eosTokenIds: readonly number[];
  rng: Rng;
  /** grammar bitmask (bit id&31 of word id>>5 = allowed): other ids are masked to -inf before anything else */
  allowed?: Int32Array;
}

export const GREEDY_EPS = 1e-5;

/**
 * Whether the backend's token choice (pds::RowSampling: greedy / temperature / top-k / top-p / min-p from a
 * uniform draw) gives what sampleRow would: no logit_bias, no penalties, no logprobs, no min_tokens masking of eos/stop ids.
 */
export function backendCanSample(sp: SamplingParams, numOutputTokens: number, eosTokenIds: readonly number[]): boolean {
  if (sp.logitBias?.length) return false;
  if (sp.logprobs !== null || sp.repetitionPenalty !== 1 || sp.presencePenalty !== 0 || sp.frequencyPenalty !== 0) return false;
  if (numOutputTokens < sp.minTokens && ((!sp.ignoreEos && eosTokenIds.length > 0) || sp.stopTokenIds.length > 0)) return false;
  return true;
}

export function sampleRow(logits: Float32Array, ctx: SampleContext): { tokenId: number; logprob?: TokenLogprob } {
  const sp = ctx.sampling;
  // logprobs come from the raw model distribution, before penalties and masking
  const raw = sp.logprobs !== null ? logits.slice() : null;

  if (sp.logitBias) for (const [id, bias] of sp.logitBias) if (id < logits.length) logits[id] = logits[id]! + bias;
  if (ctx.allowed) applyBitmask(logits, ctx.allowed);
  applyPenalties(logits, ctx);
  if (ctx.numOutputTokens < sp.minTokens) {
    if (!sp.ignoreEos) for (const e of ctx.eosTokenIds) if (e < logits.length) logits[e] = -Infinity;
    for (const s of sp.stopTokenIds) if (s < logits.length) logits[s] = -Infinity;
  }
  const tokenId = sp.temperature < GREEDY_EPS ? argmax(logits) : sampleStochastic(logits, sp, ctx.rng);
  if (!raw) return { tokenId };
  const lse = logSumExp(raw);
  return {
    tokenId,
    logprob: {
      tokenId,
      logprob: raw[tokenId]! - lse,
      top: topK(raw, sp.logprobs!).map(([id, v]) => ({ tokenId: id, logprob: v - lse })),
    },
  };
}

export function argmax(row: Float32Array): number {
  let best = 0;
  let bv = row[0]!;
  for (let i = 1; i < row.length; i++) {
    const v = row[i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

function logSumExp(row: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m);
  return m + Math.log(s);
}

/** the k largest (id, value) pairs, descending */
export function topK(row: Float32Array, k: number): Array<[number, number]> {
  if (k <= 0) return [];
  const out: Array<[number, number]> = [];
  let minV = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (out.length < k) {
      out.push([i, v]);
      if (out.length === k) {
        out.sort((a, b) => b[1] - a[1]);
        minV = out[k - 1]![1];
      }
    } else if (v > minV) {
      let j = k - 1;
      while (j > 0 && out[j - 1]![1] < v) {
        out[j] = out[j - 1]!;
        j--;
      }
      out[j] = [i, v];
      minV = out[k - 1]![1];
    }
  }
  if (out.length < k) out.sort((a, b) => b[1] - a[1]);
  return out;
}

function applyPenalties(row: Float32Array, ctx: SampleContext): void {
  const sp = ctx.sampling;
  if (sp.repetitionPenalty !== 1) {
    const seen = new Set<number>(ctx.promptTokenIds);
    for (const id of ctx.outputCounts.keys()) seen.add(id);
    for (const id of seen) {
      if (id >= row.length) continue;
      const v = row[id]!;
      row[id] = v > 0 ? v / sp.repetitionPenalty : v * sp.repetitionPenalty;
    }
  }
  if (sp.presencePenalty !== 0 || sp.frequencyPenalty !== 0) {
    for (const [id, count] of ctx.outputCounts) {
      if (id >= row.length) continue;
      row[id] = row[id]! - sp.frequencyPenalty * count - sp.presencePenalty;
    }
  }
}

/**
 * Temperature sampling with optional top-k, top-p and min-p, in O(V) passes over the row
 * (top-p sorts a copy of the row natively to find its logit threshold).
 */
function sampleStochastic(row: Float32Array, sp: SamplingParams, rng: Rng): number {
  const V = row.length;
  const invT = 1 / sp.temperature;
  let m = -Infinity;
  for (let i = 0; i < V; i++) if (row[i]! > m) m = row[i]!;
  if (!Number.isFinite(m)) return argmax(row);
  // threshold logit: tokens below it are out
  let thr = -Infinity;
  if (sp.topK > 0 && sp.topK < V) {
    const top = topK(row, sp.topK);
    thr = top[top.length - 1]![1];
  }
  // exp((v - m) / T) relative to the max token; min-p keeps tokens with p >= minP * pmax
  if (sp.minP > 0) thr = Math.max(thr, m + Math.log(sp.minP) * sp.temperature);
  let total = 0;
  for (let i = 0; i < V; i++) if (row[i]! >= thr) total += Math.exp((row[i]! - m) * invT);
  if (sp.topP < 1) {
    const sorted = row.slice().sort().reverse(); // descending, native
    let acc = 0;
    const target = sp.topP * total;
    for (let i = 0; i < V; i++) {
      const v = sorted[i]!;
      if (v < thr) break;
      acc += Math.exp((v - m) * invT);
      if (acc >= target) {
        thr = v;
        break;
      }
    }
    total = 0;
    for (let i = 0; i < V; i++) if (row[i]! >= thr) total += Math.exp((row[i]! - m) * invT);
  }
  let r = rng.random() * total;
  let last = -1;
  for (let i = 0; i < V; i++) {
    const v = row[i]!;
    if (v < thr || v === -Infinity) continue; // masked ids never win, not even by rounding
    last = i;
    r -= Math.exp((v - m) * invT);
    if (r < 0) return i;
  }
  return last >= 0 ? last : argmax(row);
}

/** PDSERVE_GRAMMAR_MASK_HOST=1: grammar rows sampled on the host from copied-out logits (the path before masks
 * went to the backend; read per step so the structured benchmark can compare both in one process). */
const grammarMaskOnHost = (): boolean => process.env.PDSERVE_GRAMMAR_MASK_HOST === '1';

/**
 * `backendMasks` false: every grammar row is sampled on the host (the engine's choice per device, see
 * create-engine.ts backendGrammarMasks).
 * The step's sampling plan for `seqs` (logits row order): backend sampling for the rows it can do alone
 * (no penalties, no logprobs, no min_tokens masking, no forks pending); a grammar row goes to the backend
 * with its bitmask (maskRows / masks: applied on the device for CUDA, before the token choice), so only
 * constrained rows upload a mask and no logits come back for them. The uniform draw comes from the request's
 * RNG (else `rng`) now, as sampleRow would draw it. Other rows are sampled on the host from the logits (then
 * wanted), and their backend choice is ignored. A grammar row goes to the backend only with its mask ready
 * (prepareConstraints) and ceil(vocabSize / 32) words long (the logits row's; unchecked without vocabSize).
 */
export function planSampling(seqs: readonly Sequence[], eosTokenIds: readonly number[], rng: Rng, vocabSize?: number, backendMasks = true): SamplingPlan {
  const R = seqs.length;
  const arrays = greedyRows(R);
  const host = new Array<boolean>(R).fill(false);
  const masked: number[] = [];
  const maskOnHost = !backendMasks || grammarMaskOnHost();
  seqs.forEach((seq, r) => {
    const sp = seq.sampling;
    const c = seq.constraint;
    // a mask sized for another vocabulary than the logits row (tokenizer larger than the model) stays on the host
    const words = vocabSize === undefined ? c?.mask.length : Math.ceil(vocabSize / 32);
    host[r] = (c !== null && (maskOnHost || !c.ready || c.mask.length !== words)) || seq.forksPending > 0 || !backendCanSample(sp, seq.numOutputTokens, eosTokenIds);
    if (c && !host[r]) masked.push(r);
    arrays.temperature[r] = sp.temperature;
    arrays.topP[r] = sp.topP;
    arrays.minP[r] = sp.minP;
    arrays.topK[r] = sp.topK;
    if (!host[r] && sp.temperature >= GREEDY_EPS) arrays.u[r] = Math.min((seq.rng ?? rng).random(), 0.99999994);
  });
  if (masked.length) {
    const words = seqs[masked[0]!]!.constraint!.mask.length;
    const masks = new Int32Array(masked.length * words);
    masked.forEach((r, m) => {
      const mask = seqs[r]!.constraint!.mask;
      if (mask.length !== words) throw new Error(`internal: grammar masks of ${mask.length} and ${words} words in one step`);
      masks.set(mask, m * words);
    });
    arrays.maskRows = Int32Array.from(masked);
    arrays.masks = masks;
  }
  return { arrays, hostRows: host, wantLogits: host.some((h) => h) };
}

/** Whether `seq` ends with the token it just appended (`tokenId`), and why; null = it goes on. */
export function checkStop(seq: Sequence, tokenId: number, eosTokenIds: readonly number[], maxModelLen: number): { reason: FinishReason; stopReason: number | null } | null {
  const sp = seq.sampling;
  if (seq.numOutputTokens >= sp.minTokens) {
    if (!sp.ignoreEos && eosTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: null };
    if (sp.stopTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: tokenId };
  }
  if (seq.constraint?.isTerminated()) return { reason: 'stop', stopReason: null };
  if (seq.numOutputTokens >= sp.maxTokens) return { reason: 'length', stopReason: null };
  if (seq.numTokens >= maxModelLen) return { reason: 'length', stopReason: null };
  return null;
}
