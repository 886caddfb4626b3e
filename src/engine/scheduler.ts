// Continuous batching with chunked prefill under one token budget (vLLM v1 style), FCFS,
// preemption by recompute when blocks run out, and the connector's external-KV admission path.
//
// Each step: running sequences first (decode tokens and remaining prefill chunks, oldest first),
// then waiting ones (prefix-cache match, connector match, block allocation). A sequence whose KV is
// loading from outside sits in WAITING_FOR_REMOTE_KVS holding its blocks until the connector reports
// it received.
import type { BlockManager } from './block-manager.js';
import type { Sequence } from './sequence.js';
import type { KvConnector, ConnectorRequest } from './connector/base.js';
import { HeldRequests, type HoldKind } from './held-requests.js';

export interface SchedulerLimits {
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
}

export interface ScheduledSeq {
  seq: Sequence;
  numNewTokens: number;
}

export interface SchedulerOutput {
  /** sequences in this step's forward and how many of their tokens it computes (running first, then admitted) */
  scheduled: ScheduledSeq[];
}

export function connectorView(seq: Sequence): ConnectorRequest {
  return {
    requestId: seq.requestId,
    promptTokenIds: seq.promptTokenIds,
    numComputedTokens: seq.numComputedTokens,
    blockIds: seq.blockTable,
    kvTransferParams: seq.kvTransferParams,
    finishReason: seq.finishReason,
  };
}

export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  /** finished sequences whose blocks are held until the connector lets go (a save or a peer read in flight) */
  readonly held: HeldRequests;
  numPreemptions = 0;

  constructor(
    private readonly limits: SchedulerLimits,
    private readonly bm: BlockManager,
    private readonly connector: KvConnector | null,
  ) {
    this.held = new HeldRequests(bm);
  }

  add(seq: Sequence): void {
    this.waiting.push(seq);
  }

  /** A forked child (it holds its share of the prompt's blocks): ahead of new requests, its request was admitted. */
  addForked(seq: Sequence): void {
    this.waiting.unshift(seq);
  }

  hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  /** sequences holding blocks, for integrity checks */
  *liveTables(): Iterable<readonly number[]> {
    for (const s of this.running) yield s.blockTable;
    for (const s of this.waiting) if (s.blockTable.length) yield s.blockTable;
    yield* this.held.tables();
  }

  schedule(): SchedulerOutput {
    let budget = this.limits.maxNumBatchedTokens;
    const scheduled: ScheduledSeq[] = [];
    let preempted = false;

    // 1. running sequences, oldest first; preempt the newest when blocks run out
    for (let i = 0; i < this.running.length && budget > 0; ) {
      const seq = this.running[i]!;
      const n = Math.min(seq.numTokens - seq.numComputedTokens, budget, seq.maxChunkTokens);
      if (n <= 0) {
        i++;
        continue;
      }
      let selfPreempted = false;
      while (!this.bm.canGrow(seq.blockTable, seq.numComputedTokens + n)) {
        const victim = this.running.pop()!;
        this.preempt(victim);
        preempted = true;
        if (victim === seq) {
          selfPreempted = true;
          break;
        }
      }
      if (selfPreempted) break;
      this.bm.grow(seq.blockTable, seq.numComputedTokens + n);
      scheduled.push({ seq, numNewTokens: n });
      budget -= n;
      i++;
    }

    // 2. waiting sequences (only when nothing was preempted this step)
    if (!preempted) {
      for (let idx = 0; idx < this.waiting.length && budget > 0 && this.running.length < this.limits.maxNumSeqs; ) {
        const seq = this.waiting[idx]!;
        if (seq.status === 'waiting_for_remote_kv') {
          idx++;
          continue;
        }
        const admitted = seq.blockTable.length > 0 ? this.admitLoaded(seq, budget) : this.admitNew(seq, budget);
        if (admitted === 'later') {
          idx++;
          continue;
        }
        if (admitted === 'no-blocks') break;
        if (admitted === 'loading') {
          idx++;
          continue;
        }
        this.waiting.splice(idx, 1);
        seq.status = 'running';
        seq.firstScheduledAt ??= performance.now();
        this.running.push(seq);
        scheduled.push({ seq, numNewTokens: admitted });
        budget -= admitted;
      }
    }
    return { scheduled };
  }

  /** First admission: prefix cache, then the connector. Returns tokens to compute now, or a state. */
  private admitNew(seq: Sequence, budget: number): number | 'later' | 'no-blocks' | 'loading' {
    // prompt logprobs need the logits of every prompt position: no prefix-cache hit, no external KV
    const wantsPromptLogits = seq.promptLogprobs !== null;
    const cached = wantsPromptLogits ? { blockIds: [], hashes: [] } : this.bm.matchPrefix(seq.tokenIds);
    const numLocal = cached.blockIds.length * this.bm.blockSize;
    let numExternal = 0;
    const askConnector = this.connector !== null && seq.numPreemptions === 0 && !seq.isForkChild;
    if (askConnector) {
      seq.kvLookupAt ??= performance.now();
      const r = this.connector.getNumNewMatchedTokens(connectorView(seq), numLocal);
      if (r.count === null) return 'later';
      seq.kvMatchedAt ??= performance.now();
      numExternal = wantsPromptLogits ? 0 : Math.max(0, Math.min(r.count, seq.numTokens - 1 - numLocal));
    }
    const numComputed = numLocal + numExternal;
    if (numExternal > 0) {
      // external KV loads asynchronously into freshly allocated blocks; compute resumes afterwards
      const alloc = this.bm.allocate(cached, numComputed);
      if (!alloc) return 'no-blocks';
      this.bm.recordPrefixQuery(seq.numTokens, numLocal);
      seq.blockTable = alloc.blockTable;
      seq.blockHashes = alloc.hashes;
      seq.numComputedTokens = numLocal;
      seq.numCachedTokens = numLocal;
      seq.numExternalTokens = numExternal;
      seq.status = 'waiting_for_remote_kv';
      seq.kvLoadStartAt = performance.now();
      this.connector!.updateStateAfterAlloc(connectorView(seq), seq.blockTable, numExternal);
      return 'loading';
    }
    const n = Math.min(seq.numTokens - numComputed, budget, seq.maxChunkTokens);
    const alloc = this.bm.allocate(cached, numComputed + n);
    if (!alloc) return 'no-blocks';
    this.bm.recordPrefixQuery(seq.numTokens, numLocal);
    if (askConnector) this.connector!.updateStateAfterAlloc(connectorView(seq), alloc.blockTable, 0);
    seq.blockTable = alloc.blockTable;
    seq.blockHashes = alloc.hashes;
    seq.numComputedTokens = numComputed;
    if (seq.numPreemptions === 0) seq.numCachedTokens = numComputed;
    return n;
  }

  /** Admission of a sequence whose external KV has arrived (it already holds blocks). */
  private admitLoaded(seq: Sequence, budget: number): number | 'no-blocks' {
    const n = Math.min(seq.numTokens - seq.numComputedTokens, budget, seq.maxChunkTokens);
    if (!this.bm.grow(seq.blockTable, seq.numComputedTokens + n)) return 'no-blocks';
    return n;
  }

  /** The connector finished loading a request's KV (ok=false: recompute the external part). */
  onLoadDone(seq: Sequence, failedFromToken: number | null): void {
    if (seq.status !== 'waiting_for_remote_kv') return;
    seq.kvLoadDoneAt = performance.now();
    const loadedFrom = seq.numComputedTokens;
    seq.kvLoadedTokens = failedFromToken === null ? seq.numExternalTokens : Math.max(0, failedFromToken - loadedFrom);
    if (failedFromToken === null) {
      seq.numComputedTokens += seq.numExternalTokens;
      seq.numCachedTokens += seq.numExternalTokens;
    } else {
      seq.numExternalTokens = 0;
      seq.numComputedTokens = Math.min(seq.numComputedTokens, failedFromToken);
      seq.numCachedTokens = seq.numComputedTokens;
    }
    seq.status = 'waiting';
  }

  private preempt(seq: Sequence): void {
    this.bm.free(seq.blockTable);
    seq.blockHashes = [];
    seq.numComputedTokens = 0;
    seq.numExternalTokens = 0;
    seq.numPreemptions++;
    seq.status = 'waiting';
    this.numPreemptions++;
    this.waiting.unshift(seq);
  }

  /** Removes a sequence from the queues; `hold` keeps its blocks (see held-requests.ts). Returns true when its blocks were freed now. */
  finish(seq: Sequence, hold: HoldKind | null): boolean {
    let i = this.running.indexOf(seq);
    if (i >= 0) this.running.splice(i, 1);
    i = this.waiting.indexOf(seq);
    if (i >= 0) this.waiting.splice(i, 1);
    seq.status = 'finished';
    if (hold && seq.blockTable.length) {
      this.held.hold(seq, hold);
      return false;
    }
    if (seq.blockTable.length) this.bm.free(seq.blockTable);
    return true;
  }
}
