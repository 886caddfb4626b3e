// vLLM's PrefixRepetitionRandomDataset: num_prefixes random prefixes, each followed by
// floor(num_requests / num_prefixes) random suffixes, every piece re-encoded to its exact length,
// then shuffled. Exercises prefix caching.
import { Rng } from '../../util/rng.js';
import type { SampleRequest } from '../types.js';
import type { Tokenizer } from '../../tokenizer/types.js';
import { allowedTokenIds, decodeToTargetLen } from './prompt-tokens.js';

export interface PrefixRepetitionOptions {
  numRequests: number;
  prefixLen: number; // --prefix-repetition-prefix-len (256)
  suffixLen: number; // --prefix-repetition-suffix-len (256)
  numPrefixes: number; // --prefix-repetition-num-prefixes (10)
  outputLen: number; // --prefix-repetition-output-len (128)
  seed: number;
  shuffle: boolean;
}

export function samplePrefixRepetition(tok: Tokenizer, o: PrefixRepetitionOptions): { requests: SampleRequest[]; mismatch: number } {
  const perPrefix = Math.floor(o.numRequests / o.numPrefixes);
  if (perPrefix === 0) throw new RangeError(`--num-prompts (${o.numRequests}) must be >= --prefix-repetition-num-prefixes (${o.numPrefixes})`);
  const rng = new Rng(o.seed);
  const allowed = allowedTokenIds(tok);
  let mismatch = 0;
  const exact = (len: number): number[] => {
    const ids = Array.from({ length: len }, () => allowed[rng.integers(0, allowed.length)]!);
    const r = decodeToTargetLen(tok, ids, len, rng, allowed);
    mismatch += r.mismatch;
    return r.ids;
  };
  const requests: SampleRequest[] = [];
  for (let p = 0; p < o.numPrefixes; p++) {
    const prefix = exact(o.prefixLen);
    for (let s = 0; s < perPrefix; s++) {
      const ids = prefix.concat(exact(o.suffixLen));
      requests.push({ prompt: tok.decode(ids), promptLen: ids.length, expectedOutputLen: o.outputLen });
    }
  }
  if (o.shuffle) rng.shuffle(requests);
  return { requests, mismatch };
}
