// Turns one row of logits into a token: penalties, min_tokens masking, then greedy or
// temperature / top-k / top-p / min-p sampling; logprobs from the raw logits (vLLM's default).
// Works in place on the row (a view into the runner's logits buffer).
import type { SamplingParams, TokenLogprob } from './protocol.js';
import type { Rng } from './rng.js';

export interface SampleContext {
  sampling: SamplingParams;
  promptTokenIds: readonly number[];
  outputCounts: ReadonlyMap<number, number>;
  numOutputTokens: number;
  eosTokenIds: readonly number[];
  rng: Rng;
}

const GREEDY_EPS = 1e-5;

export function sampleRow(logits: Float32Array, ctx: SampleContext): { tokenId: number; logprob?: TokenLogprob } {
  const sp = ctx.sampling;
  // logprobs come from the raw model distribution, before penalties and masking
  const raw = sp.logprobs !== null ? logits.slice() : null;

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

function sampleStochastic(row: Float32Array, sp: SamplingParams, rng: Rng): number {
  // candidates: top-k if set, else every token within a wide window of the max (exp(-30) is negligible)
  const invT = 1 / sp.temperature;
  let cand: Array<[number, number]>;
  if (sp.topK > 0) cand = topK(row, Math.min(sp.topK, row.length));
  else {
    let m = -Infinity;
    for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!;
    const floor = m - 30 * sp.temperature;
    cand = [];
    for (let i = 0; i < row.length; i++) if (row[i]! >= floor) cand.push([i, row[i]!]);
    cand.sort((a, b) => b[1] - a[1]);
  }
  if (cand.length === 0 || !Number.isFinite(cand[0]![1])) return argmax(row);
  const m = cand[0]![1];
  const probs = cand.map(([, v]) => Math.exp((v - m) * invT));
  let total = probs.reduce((a, b) => a + b, 0);
  let keep = probs.length;
  if (sp.minP > 0) {
    const thr = sp.minP * (probs[0]! / total);
    while (keep > 1 && probs[keep - 1]! / total < thr) keep--;
  }
  if (sp.topP < 1) {
    let acc = 0;
    for (let i = 0; i < keep; i++) {
      acc += probs[i]! / total;
      if (acc >= sp.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  total = 0;
  for (let i = 0; i < keep; i++) total += probs[i]!;
  let r = rng.next() * total;
  for (let i = 0; i < keep; i++) {
    r -= probs[i]!;
    if (r < 0) return cand[i]![0];
  }
  return cand[keep - 1]![0];
}
