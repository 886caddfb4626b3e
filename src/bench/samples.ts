// --dataset-name -> the list of SampleRequests (deterministic for a given seed).
import type { Tokenizer } from '../tokenizer/types.js';
import type { TargetConfig, WorkloadConfig } from './config.js';
import { sampleCustom, sampleShareGpt } from './datasets/file-datasets.js';
import { samplePrefixRepetition } from './datasets/prefix-repetition.js';
import { sampleRandomParallel } from './datasets/random-parallel.js';
import type { SampleRequest } from './types.js';

export interface Samples {
  requests: SampleRequest[];
  /** Tokens more (+) or fewer (-) than asked after decode/re-encode, summed (synthetic datasets). */
  mismatch: number;
}

/** `tokenizerArg` lets worker threads load the same tokenizer (random dataset). */
export async function getSamples(tok: Tokenizer, tokenizerArg: string, w: WorkloadConfig, t: Pick<TargetConfig, 'backend'>): Promise<Samples> {
  switch (w.datasetName) {
    case 'random':
      return sampleRandomParallel(tok, tokenizerArg, {
        numRequests: w.numPrompts, inputLen: w.randomInputLen, outputLen: w.randomOutputLen,
        rangeRatio: w.randomRangeRatio, prefixLen: w.randomPrefixLen, seed: w.seed,
      });
    case 'prefix_repetition':
      return samplePrefixRepetition(tok, {
        numRequests: w.numPrompts, prefixLen: w.prefixRepetitionPrefixLen, suffixLen: w.prefixRepetitionSuffixLen,
        numPrefixes: w.prefixRepetitionNumPrefixes, outputLen: w.prefixRepetitionOutputLen, seed: w.seed, shuffle: !w.disableShuffle,
      });
    case 'sharegpt':
      return {
        requests: sampleShareGpt(tok, { path: w.datasetPath!, numRequests: w.numPrompts, seed: w.seed, shuffle: !w.disableShuffle, outputLen: w.sharegptOutputLen }),
        mismatch: 0,
      };
    case 'custom':
      return {
        requests: sampleCustom(tok, {
          path: w.datasetPath!, numRequests: w.numPrompts, seed: w.seed, shuffle: !w.disableShuffle, outputLen: w.customOutputLen,
          // The chat endpoint applies the template server-side.
          applyChatTemplate: !w.skipChatTemplate && t.backend === 'openai',
        }),
        mismatch: 0,
      };
  }
}
