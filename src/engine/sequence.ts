// A request's state inside the engine. The block table is the only link to KV memory (integers).
import type { SamplingParams, TokenLogprob, FinishReason, PromptLogprob, TokenConstraint } from './protocol.js';
import type { KvTransferParams } from './connector/types.js';
import type { Rng } from '../util/rng.js';

export type SeqStatus = 'waiting' | 'waiting_for_remote_kv' | 'running' | 'finished';

export class Sequence {
  readonly requestId: string;
  readonly promptTokenIds: number[];
  readonly sampling: SamplingParams;
  readonly kvTransferParams?: KvTransferParams;
  /** prompt followed by generated tokens */
  readonly tokenIds: number[];
  status: SeqStatus = 'waiting';
  /** performance.now() when the engine took the request, and when the scheduler first ran it (null before) */
  readonly arrivedAt = performance.now();
  firstScheduledAt: number | null = null;
  /** tokens whose KV is in this sequence's blocks */
  numComputedTokens = 0;
  /** prompt tokens whose KV came from the prefix cache or the connector (usage.cached_tokens) */
  numCachedTokens = 0;
  /** tokens loaded by the connector (subset of numCachedTokens) */
  numExternalTokens = 0;
  /** KV connector timing, performance.now(): first asked for a match, match known, load queued (blocks
   *  allocated), blocks ready (load ended, failed or not); null = did not happen. kvLoaded*: what came in. */
  kvLookupAt: number | null = null;
  kvMatchedAt: number | null = null;
  kvLoadStartAt: number | null = null;
  kvLoadDoneAt: number | null = null;
  kvLoadedTokens = 0;
  kvLoadedBytes = 0;
  blockTable: number[] = [];
  /** block hashes of the full blocks registered so far (prefix caching) */
  blockHashes: string[] = [];
  finishReason: FinishReason | null = null;
  stopReason: number | string | null = null;
  numPreemptions = 0;
  /** per-request generator when sampling.seed is set */
  rng: Rng | null = null;
  /** aborted while its KV was loading: blocks are freed once the load ends */
  aborted = false;
  /** parallel sampling: the parent's request id (its own for the parent) and this sequence's choice index */
  groupId: string;
  index = 0;
  /** sequences still to fork from this one when it samples its first token (n - 1 on a parent) */
  forksPending = 0;
  /** a forked child: shares the parent's prompt blocks, invisible to the KV connector */
  isForkChild = false;
  /** prompt logprobs gathered so far (sampling.promptLogprobs set): entry i is token i's, the first null */
  promptLogprobs: Array<PromptLogprob | null> | null = null;
  /** most tokens computed per step (bounds the logits rows of a prompt-logprobs request) */
  maxChunkTokens = Number.POSITIVE_INFINITY;
  // output bookkeeping since the last emitted increment
  pendingTokenIds: number[] = [];
  pendingLogprobs: TokenLogprob[] = [];
  /** grammar on the output (masked sampling on the host), disposed when the sequence ends */
  constraint: TokenConstraint | null = null;
  /** parent with a grammar, before it forks: child i's own matcher (fresh, same grammar) at [i - 1] */
  forkConstraints: TokenConstraint[] = [];
  /** counts of generated tokens (penalties) */
  readonly outputCounts = new Map<number, number>();

  constructor(requestId: string, promptTokenIds: number[], sampling: SamplingParams, kvTransferParams?: KvTransferParams) {
    this.requestId = requestId;
    this.promptTokenIds = promptTokenIds;
    this.tokenIds = promptTokenIds.slice();
    this.sampling = sampling;
    this.kvTransferParams = kvTransferParams;
    this.groupId = requestId;
    if (sampling.promptLogprobs != null) this.promptLogprobs = [null];
  }

  get numTokens(): number {
    return this.tokenIds.length;
  }
  get numPromptTokens(): number {
    return this.promptTokenIds.length;
  }
  get numOutputTokens(): number {
    return this.tokenIds.length - this.promptTokenIds.length;
  }

  appendToken(id: number, logprob?: TokenLogprob): void {
    this.tokenIds.push(id);
    this.pendingTokenIds.push(id);
    if (logprob) this.pendingLogprobs.push(logprob);
    this.outputCounts.set(id, (this.outputCounts.get(id) ?? 0) + 1);
  }
}
