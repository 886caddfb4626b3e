// Typed messages between the HTTP edge (src/server) and the engine (src/engine). No JSON past this line.
import type { Tokenizer } from '../tokenizer/types.js';
import type { KvTransferParams } from './connector/transfer-params.js';

// What the API server uses of the connector seam: the params schema (validated at the edge) and the
// shape of a connector's HTTP routes.
export { kvTransferParamsSchema, type KvTransferParams } from './connector/transfer-params.js';
export type { ConnectorRoute } from './connector/base.js';

export interface SamplingParams {
  temperature: number; // 0 = greedy
  topP: number; // 1 = off
  topK: number; // 0 or -1 = off
  minP: number; // 0 = off
  seed: number | null; // per-request reproducible sampling
  repetitionPenalty: number; // 1 = off (HF/vLLM semantics: divides positive logits, multiplies negative)
  presencePenalty: number; // 0 = off (OpenAI semantics, over generated tokens)
  frequencyPenalty: number; // 0 = off
  maxTokens: number; // already clamped to maxModelLen - promptLen by the server
  minTokens: number;
  stop: string[]; // stop strings (not included in output unless includeStopStrInOutput)
  stopTokenIds: number[];
  ignoreEos: boolean;
  includeStopStrInOutput: boolean;
  logprobs: number | null; // null = off; k >= 0 = return chosen token logprob + top k
  skipSpecialTokens: boolean;
  /** additive biases on logits before sampling ([token id, bias] pairs, bias in [-100, 100]); empty = off */
  logitBias?: ReadonlyArray<readonly [number, number]>;
  /** k >= 0: logprob of every prompt token (after the first) + the top k at its position; null/absent = off */
  promptLogprobs?: number | null;
}

export const defaultSamplingParams: SamplingParams = {
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  seed: null,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  maxTokens: 16,
  minTokens: 0,
  stop: [],
  stopTokenIds: [],
  ignoreEos: false,
  includeStopStrInOutput: false,
  logprobs: null,
  skipSpecialTokens: true,
};

export interface GenerateRequest {
  requestId: string;
  promptTokenIds: number[];
  sampling: SamplingParams;
  /** NIXL-style point-to-point parameters, passed through to the KV connector (may be undefined). */
  kvTransferParams?: KvTransferParams;
  /**
   * Parallel sampling: n sequences forked from one prefill (they share the prompt's KV blocks), each with
   * its own sampling stream (child i: seed + i when seeded). Outputs carry `index`; default 1.
   */
  n?: number;
  /** A grammar on the output (structured output, tool calls): owned by the engine from addRequest on. */
  constraint?: TokenConstraint;
  /**
   * With n > 1 and a constraint: n - 1 more fresh matchers of the same grammar, one per forked sequence
   * (child i gets [i - 1] when it forks, in the parent's state then: nothing accepted yet). Owned by the
   * engine from addRequest on.
   */
  forkConstraints?: TokenConstraint[];
}

/**
 * Per-request token constraint (src/structured/request-matcher.ts). Before a step that samples the request
 * the engine awaits prepare(); `mask` then holds the allowed ids (bit id&31 of word id>>5); the sampled
 * token goes to accept(). EOS is allowed only where the grammar may end. dispose() when the request ends.
 */
export interface TokenConstraint {
  readonly mask: Int32Array;
  readonly ready: boolean;
  prepare(): Promise<void>;
  accept(tokenId: number): boolean;
  isTerminated(): boolean;
  dispose(): void;
}

export interface TokenLogprob {
  tokenId: number;
  logprob: number;
  top: Array<{ tokenId: number; logprob: number }>; // length = requested top_logprobs
}

/** A prompt token's logprob under the model given the tokens before it; rank 1 = the most likely token. */
export interface PromptLogprob {
  tokenId: number;
  logprob: number;
  rank: number;
  top: Array<{ tokenId: number; logprob: number }>; // length = requested prompt_logprobs, descending
}

export type FinishReason = 'stop' | 'length' | 'abort';

/** One increment of a request's output (deltas since the previous increment). */
export interface RequestOutput {
  requestId: string;
  /** which of the request's n sequences this increment belongs to (0 when n = 1); `finished` is per sequence */
  index?: number;
  newTokenIds: number[];
  newText: string; // detokenized delta; never ends inside a UTF-8 sequence; stop strings removed
  newLogprobs?: TokenLogprob[]; // aligned with newTokenIds, when sampling.logprobs != null
  /** on the first increment of sequence 0 when sampling.promptLogprobs != null: one per prompt token, the first null */
  promptLogprobs?: Array<PromptLogprob | null>;
  finished: boolean;
  finishReason?: FinishReason;
  stopReason?: number | string | null; // the stop token id or stop string that ended it
  promptTokenIds: number[];
  numCachedTokens: number; // prompt tokens whose KV was reused (prefix cache) or loaded (connector)
  kvTransferParams?: KvTransferParams; // set on the final output of a producer when relevant
  /** seconds from the engine taking the request to its first schedule (vLLM's queued time), once known */
  queueTimeS?: number;
  /** set once the KV connector was consulted and the request first ran (on every later increment too) */
  kvLoad?: KvLoadTiming;
}

/** What the KV connector did for one request, in seconds from the engine taking it (Sequence.arrivedAt). */
export interface KvLoadTiming {
  lookupStartS: number; // the connector first asked for a match
  loadStartS: number | null; // external blocks allocated and the load queued; null = nothing to load
  loadEndS: number | null; // blocks ready (or the load failed; tokens then counts what arrived)
  loadS: number; // loadEndS - loadStartS, 0 when nothing was loaded
  tokens: number; // tokens whose KV came in
  bytes: number; // their KV bytes (all layers, K and V)
}

export interface EngineStats {
  numRequestsRunning: number;
  numRequestsWaiting: number;
  kvCacheUsage: number; // 0..1
  numBlocksTotal: number;
  numBlocksFree: number;
  prefixCacheQueries: number; // tokens queried, cumulative
  prefixCacheHits: number; // tokens hit, cumulative
  numPreemptions: number; // cumulative
  /** the KV connector's cumulative event counts, when one is configured */
  kvConnector?: Record<string, number>;
}

export interface ModelInfo {
  name: string; // served model name
  root: string; // dir or card name it came from
  maxModelLen: number;
  vocabSize: number;
  dummyWeights: boolean; // random weights (--load-format dummy or the demo model)
  description: string;
}

/** What the HTTP server needs from an engine. Implemented by src/engine/async-llm.ts. */
export interface EngineClient {
  readonly model: ModelInfo;
  readonly tokenizer: Tokenizer;
  /** Yields increments until one has finished=true. Aborting the signal aborts the request and frees its blocks. */
  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<RequestOutput>;
  stats(): EngineStats;
  /** Throws if the block manager's accounting is broken (free + used != total, refcounts). */
  checkIntegrity(): void;
  isHealthy(): boolean;
  shutdown(): Promise<void>;
}
