// LLMEngine.step() = schedule -> run model -> postprocess (nano-vllm's loop), with the KV connector's
// plan before the forward and its saves after it. Everything else is bookkeeping around it: requests in
// and out, parallel-sampling forks, the end of a request (held-requests.ts when the connector keeps it).
import type { EngineConfig } from './config.js';
import type { EngineStats, GenerateRequest, FinishReason, TokenLogprob } from './protocol.js';
import type { ConnectorMetadata, KvConnector } from './connector/base.js';
import { getLogger } from '../util/logger.js';
import { BlockManager } from './block-manager.js';
import { Scheduler, connectorView } from './scheduler.js';
import { ModelRunner, type ForwardModel, type RunResult } from './model-runner.js';
import type { ScheduledSeq } from './scheduler.js';
import { Sequence } from './sequence.js';
import { sampleRow, backendCanSample, checkStop, planSampling, GREEDY_EPS } from './sampler.js';
import { sampleMaskedRow } from '../structured/masked-sample.js';
import { Rng } from '../util/rng.js';
import type { KvTransferParams } from './connector/types.js';
import { PdsError } from '../util/errors.js';
import { forkChild } from './fork.js';
import { maxPromptLogitsChunk, promptLogprob } from './prompt-logprobs.js';
import { kvBlockCopier, type BlockCopy, type KvBlockCopier } from './kv-block-copy.js';

const log = getLogger('engine');

/** Grammar masks for the sequences this step may sample (a microtask each when already prepared). */
async function prepareConstraints(scheduled: ReadonlyArray<{ seq: Sequence }>): Promise<void> {
  let pending: Promise<void>[] | null = null;
  for (const { seq } of scheduled) {
    if (seq.constraint && !seq.constraint.ready) (pending ??= []).push(seq.constraint.prepare());
    // a parent about to fork: its children sample their first token from this step's row
    for (const c of seq.forkConstraints) if (!c.ready) (pending ??= []).push(c.prepare());
  }
  if (pending) await Promise.all(pending);
}
/** PDSERVE_TRACE_STEPS=1: one log line per step with its forward and save/postprocess times. */
const TRACE_STEPS = process.env.PDSERVE_TRACE_STEPS === '1';

export interface LLMEngineArgs {
  config: EngineConfig;
  model: ForwardModel;
  numBlocks: number;
  vocabSize: number;
  maxModelLen: number;
  eosTokenIds: number[];
  connector: KvConnector | null;
  /**
   * Run each step's KV saves in the background, overlapping the next forward (devices whose forward and
   * transfers run side by side: cuda). The blocks being saved are retained until their save ends, so a
   * preempted request's blocks cannot be reused under a running gather.
   */
  overlapKvSaves?: boolean;
  /** Grammar rows sampled by the backend under their bitmask (default true); false: on the host. */
  backendGrammarMasks?: boolean;
}

/** A sequence with news: new tokens (seq.pendingTokenIds) and/or it finished. */
export interface StepOutput {
  seq: Sequence;
  finished: boolean;
  /** The connector's params for the peer (producer side of a point-to-point transfer), on the final output. */
  kvTransferParams?: KvTransferParams;
  /** The request failed (its KV could not be loaded under kv_load_failure_policy fail): no tokens, an error. */
  error?: PdsError;
}

export class LLMEngine {
  readonly blockManager: BlockManager;
  readonly scheduler: Scheduler;
  private readonly runner: ModelRunner;
  private readonly rng: Rng;
  private readonly byId = new Map<string, Sequence>();
  /** parallel-sampling groups (n > 1): parent request id -> parent and forked children */
  private readonly groups = new Map<string, Sequence[]>();
  /** copies of forked prompts' partial blocks, made before the step returns (null: children recompute) */
  private readonly copier: KvBlockCopier | null;
  private pendingCopies: BlockCopy[] = [];
  private readonly outbox: StepOutput[] = [];
  /** requests ended because their KV load failed (policy fail), until their final output goes out */
  private readonly loadFailures = new Map<string, PdsError>();
  /** Block lists retained by background KV saves (overlapKvSaves), and those saves. */
  private readonly savingTables = new Set<number[]>();
  private readonly savesInFlight = new Set<Promise<void>>();

  constructor(private readonly args: LLMEngineArgs) {
    const c = args.config;
    this.blockManager = new BlockManager(args.numBlocks, c.blockSize, c.enablePrefixCaching);
    this.scheduler = new Scheduler({ maxNumBatchedTokens: c.maxNumBatchedTokens, maxNumSeqs: c.maxNumSeqs }, this.blockManager, args.connector);
    this.runner = new ModelRunner(args.model, c.blockSize, args.vocabSize);
    this.rng = new Rng(c.seed);
    this.copier = kvBlockCopier(args.model);
  }

  addRequest(req: GenerateRequest): Sequence {
    if (this.byId.has(req.requestId) || this.groups.has(req.requestId)) throw new PdsError('PDS_ERR_BAD_REQUEST', `request id ${req.requestId} is already in use`);
    const maxBlocksNeeded = this.blockManager.blocksFor(Math.min(this.args.maxModelLen, req.promptTokenIds.length + req.sampling.maxTokens));
    if (maxBlocksNeeded > this.blockManager.numBlocks)
      throw new PdsError('PDS_ERR_CONTEXT_LENGTH', `request needs ${maxBlocksNeeded} KV blocks but the cache has ${this.blockManager.numBlocks}`);
    const n = req.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new PdsError('PDS_ERR_BAD_REQUEST', `n must be a positive integer, got ${n}`, 'n');
    const seq = new Sequence(req.requestId, req.promptTokenIds, req.sampling, req.kvTransferParams);
    if (req.sampling.seed !== null) seq.rng = new Rng(req.sampling.seed);
    if (req.constraint) seq.constraint = req.constraint;
    if (req.forkConstraints?.length) {
      if (!req.constraint || req.forkConstraints.length !== n - 1) throw new PdsError('PDS_ERR_BAD_REQUEST', `forkConstraints needs a constraint and n - 1 = ${n - 1} matchers`, 'n');
      seq.forkConstraints = req.forkConstraints;
    } else if (req.constraint && n > 1) throw new PdsError('PDS_ERR_BAD_REQUEST', 'n > 1 with a constraint needs one matcher per sequence (forkConstraints)', 'n');
    if (seq.promptLogprobs) seq.maxChunkTokens = maxPromptLogitsChunk(this.args.vocabSize);
    this.byId.set(req.requestId, seq);
    if (n > 1) {
      seq.forksPending = n - 1;
      this.groups.set(req.requestId, [seq]);
    }
    this.scheduler.add(seq);
    return seq;
  }

  /** Ends a request from outside (client abort, or a stop string found by the output processor). */
  finishRequest(requestId: string, reason: FinishReason, stopReason: string | number | null = null): void {
    const group = this.groups.get(requestId);
    if (group) {
      // the parent's id ends every sequence of its group (children first: the parent may hold them up)
      for (const s of [...group].reverse()) this.finishOne(s.requestId, reason, stopReason);
      return;
    }
    this.finishOne(requestId, reason, stopReason);
  }

  /** Ends one sequence only (a stop string in one of n choices); finishRequest ends a whole group. */
  finishSequence(requestId: string, reason: FinishReason, stopReason: string | number | null = null): void {
    this.finishOne(requestId, reason, stopReason);
  }

  private finishOne(requestId: string, reason: FinishReason, stopReason: string | number | null): void {
    const seq = this.byId.get(requestId);
    if (!seq || seq.status === 'finished') return;
    seq.finishReason = reason;
    seq.stopReason = stopReason;
    if (seq.status === 'waiting_for_remote_kv') {
      // its blocks are being written by a load: free them only when the load reports done
      seq.aborted = true;
      if (!seq.isForkChild) this.args.connector?.loadAborted?.(requestId);
      return;
    }
    this.end(seq);
  }

  hasWork(): boolean {
    return this.scheduler.hasWork() || this.scheduler.held.size > 0;
  }

  async step(): Promise<StepOutput[]> {
    const connector = this.args.connector;
    if (connector) this.pollConnector(connector);
    const { scheduled } = this.scheduler.schedule();
    const saves = connector ? this.planConnector(connector, scheduled) : [];
    if (scheduled.length) {
      await prepareConstraints(scheduled);
      const t0 = TRACE_STEPS ? performance.now() : 0;
      const run = await this.runner.run(scheduled, (seqs) => planSampling(seqs, this.args.eosTokenIds, this.rng, this.runner.vocabSize, this.args.backendGrammarMasks ?? true));
      const t1 = TRACE_STEPS ? performance.now() : 0;
      if (connector) await this.saveAfterForward(connector, saves);
      this.postprocess(scheduled, run);
      await this.copyForkedBlocks();
      if (TRACE_STEPS) {
        const tokens = scheduled.reduce((a, s) => a + s.numNewTokens, 0);
        log.info(`step: ${scheduled.length} seqs, ${tokens} tokens: forward ${(t1 - t0).toFixed(2)} ms, save+postprocess ${(performance.now() - t1).toFixed(2)} ms`);
      }
    }
    return this.takeOutputs();
  }

  /** The connector's plan for this step (fork children are the engine's own): loads start now; returns the saves. */
  private planConnector(connector: KvConnector, scheduled: readonly ScheduledSeq[]): ConnectorMetadata['saves'] {
    const meta = connector.buildConnectorMeta({
      scheduled: scheduled.filter(({ seq }) => !seq.isForkChild).map(({ seq, numNewTokens }) => ({
        req: connectorView(seq),
        numNewTokens,
        isPrefillDone: seq.numComputedTokens + numNewTokens >= seq.numPromptTokens,
      })),
    });
    connector.startLoadKv(meta);
    return meta.saves;
  }

  /** After the forward: this step's saves, awaited now or (overlapKvSaves) left to run beside the next steps. */
  private async saveAfterForward(connector: KvConnector, saves: ConnectorMetadata['saves']): Promise<void> {
    if (this.args.overlapKvSaves) this.saveInBackground(connector, saves);
    else await connector.waitForSave();
  }

  /** The forked children's copies of their parent's partial block, before any forward reads them. */
  private async copyForkedBlocks(): Promise<void> {
    if (!this.pendingCopies.length) return;
    const copies = this.pendingCopies.splice(0);
    await Promise.all(copies.map((c) => this.copier!(c)));
  }

  /** This step's saves run while the next steps compute; their blocks are retained until they end. */
  private saveInBackground(connector: KvConnector, saves: ConnectorMetadata['saves']): void {
    const held = saves.map((s) => s.blockIds.slice(0, this.blockManager.blocksFor(s.end)));
    for (const t of held) {
      this.blockManager.retain(t);
      this.savingTables.add(t);
    }
    const p: Promise<void> = connector
      .waitForSave()
      .catch((e) => log.warn(`background KV save failed: ${(e as Error).message}`))
      .finally(() => {
        for (const t of held) {
          this.savingTables.delete(t);
          this.blockManager.free(t);
        }
        this.savesInFlight.delete(p);
      });
    this.savesInFlight.add(p);
  }

  /** Resolves when every background KV save has ended (shutdown waits for it before the model goes). */
  async drainSaves(): Promise<void> {
    while (this.savesInFlight.size) await Promise.all([...this.savesInFlight]);
  }

  /** Outputs produced since the last call (also by finishRequest between steps). */
  takeOutputs(): StepOutput[] {
    return this.outbox.splice(0);
  }

  private postprocess(scheduled: ReadonlyArray<{ seq: Sequence; numNewTokens: number }>, { logits, tokens, plan, sampled, promptRows }: RunResult): void {
    const bm = this.blockManager;
    for (const { seq, numNewTokens } of scheduled) {
      seq.numComputedTokens += numNewTokens;
      bm.commitFullBlocks(seq.blockTable, seq.blockHashes, seq.tokenIds, seq.numComputedTokens);
    }
    const V = this.runner.vocabSize;
    promptRows.forEach(({ seq, position }, j) => {
      const r = sampled.length + j;
      seq.promptLogprobs!.push(promptLogprob(logits!.subarray(r * V, (r + 1) * V), seq.tokenIds[position + 1]!, seq.sampling.promptLogprobs ?? 0));
    });
    sampled.forEach((seq, r) => {
      if (seq.status === 'finished') return;
      const children = seq.forksPending > 0 ? this.fork(seq) : [];
      const row = logits ? logits.subarray(r * V, (r + 1) * V) : null;
      // sampleRow works in place: each child gets its own copy of the parent's row
      const rows = children.map(() => row?.slice() ?? null);
      this.sampleInto(seq, tokens && plan && !plan.hostRows[r] ? tokens[r]! : null, row);
      children.forEach((c, i) => {
        if (this.sampleInto(c, null, rows[i]!)) this.scheduler.addForked(c);
      });
    });
  }

  /** Forks a parent's n - 1 children now (its prompt is computed, its first token not yet sampled). */
  private fork(parent: Sequence): Sequence[] {
    const group = this.groups.get(parent.requestId)!;
    const children: Sequence[] = [];
    let copy: BlockCopy | null = null;
    for (let i = 1; i <= parent.forksPending; i++) {
      const { child, copy: c } = forkChild(parent, i, this.blockManager, this.copier !== null);
      child.constraint = parent.forkConstraints[i - 1] ?? null;
      if (c) {
        copy ??= { src: c.src, dsts: [], numTokens: c.numTokens };
        copy.dsts.push(c.dst);
      }
      if (this.byId.has(child.requestId)) throw new Error(`internal: fork id ${JSON.stringify(child.requestId)} in use`);
      this.byId.set(child.requestId, child);
      group.push(child);
      children.push(child);
    }
    parent.forksPending = 0;
    parent.forkConstraints = [];
    if (copy) this.pendingCopies.push(copy);
    return children;
  }

  /** Appends one sampled token (the backend's choice, or sampled here from `row`); false when that ended it. */
  private sampleInto(seq: Sequence, backendToken: number | null, row: Float32Array | null): boolean {
    let tokenId: number;
    let logprob: TokenLogprob | undefined;
    if (backendToken !== null) tokenId = backendToken;
    else if (seq.constraint && row && backendCanSample(seq.sampling, seq.numOutputTokens, this.args.eosTokenIds)) {
      // grammar row the backend's sampler could do but for the mask: mask here, sample natively
      const u = seq.sampling.temperature >= GREEDY_EPS ? Math.min((seq.rng ?? this.rng).random(), 0.99999994) : 0;
      tokenId = sampleMaskedRow(row, seq.constraint.mask, seq.sampling, u);
    } else {
      if (!row) throw new Error('internal: no logits for a host-sampled row');
      ({ tokenId, logprob } = sampleRow(row, {
        sampling: seq.sampling,
        promptTokenIds: seq.promptTokenIds,
        outputCounts: seq.outputCounts,
        numOutputTokens: seq.numOutputTokens,
        eosTokenIds: this.args.eosTokenIds,
        rng: seq.rng ?? this.rng,
        ...(seq.constraint ? { allowed: seq.constraint.mask } : {}),
      }));
    }
    if (seq.constraint && !seq.constraint.accept(tokenId)) {
      // nothing the grammar allows could be sampled (e.g. min_tokens masked the only allowed EOS)
      log.warn(`request ${seq.requestId}: token ${tokenId} rejected by its grammar; ending it`);
      seq.finishReason = 'stop';
      this.end(seq);
      return false;
    }
    seq.appendToken(tokenId, logprob);
    const stop = checkStop(seq, tokenId, this.args.eosTokenIds, this.args.maxModelLen);
    if (stop) {
      seq.finishReason = stop.reason;
      seq.stopReason = stop.stopReason;
      this.end(seq);
      return false;
    }
    this.outbox.push({ seq, finished: false });
    return true;
  }

  /**
   * Finishes a sequence: asks the connector whether to hold its blocks, emits the final output.
   * delayFree without kvTransferParams (a save in flight): the final output waits for doneSending.
   * delayFree with kvTransferParams (a peer will read the blocks): the final output goes out now, carrying
   * the params; the blocks (and the request id) stay held until doneSending.
   */
  private end(seq: Sequence): void {
    seq.constraint?.dispose();
    for (const c of seq.forkConstraints.splice(0)) c.dispose(); // ended before it forked
    let fin: { delayFree: boolean; kvTransferParams?: KvTransferParams } = { delayFree: false };
    const connector = seq.isForkChild ? null : this.args.connector; // children are the engine's own
    if (connector && seq.blockTable.length) fin = connector.requestFinished(connectorView(seq), seq.blockTable);
    else if (connector) connector.requestFinished(connectorView(seq), []); // never admitted: its lookup's kv-server pins go now
    const hold = fin.delayFree && seq.blockTable.length ? (fin.kvTransferParams ? 'sent' : 'final-waits') : null;
    this.scheduler.finish(seq, hold);
    if (hold === 'sent') this.outbox.push({ seq, finished: true, kvTransferParams: fin.kvTransferParams });
    else if (hold === null) this.emitFinal(seq, fin.kvTransferParams);
  }

  private emitFinal(seq: Sequence, kvTransferParams?: KvTransferParams): void {
    this.byId.delete(seq.requestId);
    const group = this.groups.get(seq.groupId);
    if (group && group.every((s) => s.status === 'finished' && !this.byId.has(s.requestId))) this.groups.delete(seq.groupId);
    const error = this.loadFailures.get(seq.requestId);
    this.loadFailures.delete(seq.requestId);
    this.outbox.push({ seq, finished: true, ...(kvTransferParams ? { kvTransferParams } : {}), ...(error ? { error } : {}) });
  }

  private pollConnector(connector: KvConnector): void {
    const { doneSending, doneRecving } = connector.getFinished();
    if (doneRecving.size) {
      const bad = connector.getBlockIdsWithLoadErrors();
      const failed = connector.takeFailedLoads?.();
      for (const id of doneRecving) {
        const seq = this.byId.get(id);
        if (!seq || seq.status !== 'waiting_for_remote_kv') continue;
        const reason = failed?.get(id);
        if (reason !== undefined && !seq.aborted) {
          seq.finishReason = 'abort';
          this.loadFailures.set(id, new PdsError('PDS_ERR_KV_LOAD_FAILED', `the KV of this request could not be loaded (${reason}); kv_load_failure_policy is fail`));
        }
        if (seq.aborted || reason !== undefined) {
          this.end(seq);
          continue;
        }
        let failedFrom: number | null = null;
        if (bad.size) {
          const i = seq.blockTable.findIndex((b) => bad.has(b));
          if (i >= 0) failedFrom = i * this.blockManager.blockSize;
        }
        this.scheduler.onLoadDone(seq, failedFrom);
        seq.kvLoadedBytes = seq.kvLoadedTokens * (this.args.model.kvBytesPerToken?.() ?? 0);
      }
    }
    for (const id of doneSending) {
      const h = this.scheduler.held.release(id);
      if (h?.kind === 'final-waits') this.emitFinal(h.seq);
      else if (h) this.byId.delete(id);
    }
  }

  stats(): EngineStats {
    const bm = this.blockManager;
    return {
      numRequestsRunning: this.scheduler.running.length,
      numRequestsWaiting: this.scheduler.waiting.length,
      kvCacheUsage: bm.usage,
      numBlocksTotal: bm.numBlocks,
      numBlocksFree: bm.numFreeBlocks,
      prefixCacheQueries: bm.prefixQueries,
      prefixCacheHits: bm.prefixHits,
      numPreemptions: this.scheduler.numPreemptions,
    };
  }

  checkIntegrity(): void {
    this.blockManager.checkIntegrity([...this.scheduler.liveTables(), ...this.savingTables]);
  }
}
