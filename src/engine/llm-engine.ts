// LLMEngine.step() = schedule -> run model -> postprocess. Everything else is bookkeeping around it.
import type { EngineConfig } from './config.js';
import type { EngineStats, GenerateRequest, FinishReason, TokenLogprob } from './protocol.js';
import type { ConnectorMetadata, KvConnector } from './connector/base.js';
import { getLogger } from '../util/logger.js';
import { BlockManager } from './block-manager.js';
import { Scheduler, connectorView } from './scheduler.js';
import { ModelRunner, type ForwardModel, type RunResult, type SamplingPlan } from './model-runner.js';
import { Sequence } from './sequence.js';
import { sampleRow, backendCanSample, GREEDY_EPS } from './sampler.js';
import { sampleMaskedRow } from '../structured/masked-sample.js';
import { Rng } from '../util/rng.js';
import { greedyRows } from '../native/binding.js';
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
/** PDS_TRACE_STEPS=1: one log line per step with its forward and save/postprocess times. */
const TRACE_STEPS = process.env.PDS_TRACE_STEPS === '1';

export interface LLMEngineArgs {
  config: EngineConfig;
  model: ForwardModel;
  numBlocks: number;
  vocabSize: number;
  maxModelLen: number;
  eosTokenIds: number[];
  numLayers: number;
  connector: KvConnector | null;
  /**
   * Run each step's KV saves in the background, overlapping the next forward (devices whose forward and
   * transfers run side by side: cuda). The blocks being saved are retained until their save ends, so a
   * preempted request's blocks cannot be reused under a running gather.
   */
  overlapKvSaves?: boolean;
}

/** A sequence with news: new tokens (seq.pendingTokenIds) and/or it finished. */
export interface StepOutput {
  seq: Sequence;
  finished: boolean;
  /** The connector's params for the peer (producer side of a point-to-point transfer), on the final output. */
  kvTransferParams?: Record<string, unknown>;
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
  /** finished sequences whose final output waits for the connector (saves in flight) */
  private readonly finalPending = new Set<string>();
  /** finished sequences whose final output went out (with kvTransferParams) while the peer still reads their blocks */
  private readonly sentHeld = new Set<string>();
  private readonly outbox: StepOutput[] = [];
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
    const out = this.scheduler.schedule();
    let saves: ConnectorMetadata['saves'] = [];
    if (connector) {
      const meta = connector.buildConnectorMeta({
        scheduled: out.scheduled.filter(({ seq }) => !seq.isForkChild).map(({ seq, numNewTokens }) => ({
          req: connectorView(seq),
          numNewTokens,
          isPrefillDone: seq.numComputedTokens + numNewTokens >= seq.numPromptTokens,
        })),
      });
      saves = meta.saves;
      connector.startLoadKv(meta);
    }
    if (out.scheduled.length) {
      await prepareConstraints(out.scheduled);
      const t0 = TRACE_STEPS ? performance.now() : 0;
      const run = await this.runner.run(out.scheduled, (seqs) => this.planSampling(seqs));
      const t1 = TRACE_STEPS ? performance.now() : 0;
      if (connector) {
        for (let l = 0; l < this.args.numLayers; l++) connector.saveKvLayer(l);
        if (this.args.overlapKvSaves) this.saveInBackground(connector, saves);
        else await connector.waitForSave();
      }
      this.postprocess(out.scheduled, run);
      if (this.pendingCopies.length) {
        const copies = this.pendingCopies.splice(0);
        await Promise.all(copies.map((c) => this.copier!(c))); // before any forward reads the children's blocks
      }
      if (TRACE_STEPS) {
        const tokens = out.scheduled.reduce((a, s) => a + s.numNewTokens, 0);
        log.info(`step: ${out.scheduled.length} seqs, ${tokens} tokens: forward ${(t1 - t0).toFixed(2)} ms, save+postprocess ${(performance.now() - t1).toFixed(2)} ms`);
      }
    }
    return this.takeOutputs();
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

  /**
   * Backend sampling for the rows it can do alone (no penalties, no logprobs, no min_tokens masking); the
   * uniform draw comes from the request's RNG now, as sampleRow would draw it. Rows it cannot do are sampled
   * on the host from the logits (then wanted), and their backend choice is ignored.
   */
  private planSampling(seqs: Sequence[]): SamplingPlan {
    const R = seqs.length;
    const arrays = greedyRows(R);
    const host = new Array<boolean>(R).fill(false);
    seqs.forEach((seq, r) => {
      const sp = seq.sampling;
      host[r] = seq.constraint !== null || seq.forksPending > 0 || !backendCanSample(sp, seq.numOutputTokens, this.args.eosTokenIds);
      arrays.temperature[r] = sp.temperature;
      arrays.topP[r] = sp.topP;
      arrays.minP[r] = sp.minP;
      arrays.topK[r] = sp.topK;
      if (!host[r] && sp.temperature >= GREEDY_EPS) arrays.u[r] = Math.min((seq.rng ?? this.rng).random(), 0.99999994);
    });
    return { arrays, hostRows: host, wantLogits: host.some((h) => h) };
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
    if (seq.numOutputTokens === 0) seq.firstTokenTime = performance.now();
    seq.appendToken(tokenId, logprob);
    const stop = this.checkStop(seq, tokenId);
    if (stop) {
      seq.finishReason = stop.reason;
      seq.stopReason = stop.stopReason;
      this.end(seq);
      return false;
    }
    this.outbox.push({ seq, finished: false });
    return true;
  }

  private checkStop(seq: Sequence, tokenId: number): { reason: FinishReason; stopReason: number | null } | null {
    const sp = seq.sampling;
    if (seq.numOutputTokens >= sp.minTokens) {
      if (!sp.ignoreEos && this.args.eosTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: null };
      if (sp.stopTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: tokenId };
    }
    if (seq.constraint?.isTerminated()) return { reason: 'stop', stopReason: null };
    if (seq.numOutputTokens >= sp.maxTokens) return { reason: 'length', stopReason: null };
    if (seq.numTokens >= this.args.maxModelLen) return { reason: 'length', stopReason: null };
    return null;
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
    let fin: { delayFree: boolean; kvTransferParams?: Record<string, unknown> } = { delayFree: false };
    const connector = seq.isForkChild ? null : this.args.connector; // children are the engine's own
    if (connector && seq.blockTable.length) fin = connector.requestFinished(connectorView(seq), seq.blockTable);
    else if (connector) connector.requestFinished(connectorView(seq), []); // never admitted: its lookup's kv-server pins go now
    this.scheduler.finish(seq, fin.delayFree);
    if (fin.delayFree && fin.kvTransferParams) {
      this.sentHeld.add(seq.requestId);
      this.outbox.push({ seq, finished: true, kvTransferParams: fin.kvTransferParams });
    } else if (fin.delayFree) this.finalPending.add(seq.requestId);
    else this.emitFinal(seq, fin.kvTransferParams);
  }

  private emitFinal(seq: Sequence, kvTransferParams?: Record<string, unknown>): void {
    this.byId.delete(seq.requestId);
    const group = this.groups.get(seq.groupId);
    if (group && group.every((s) => s.status === 'finished' && !this.byId.has(s.requestId))) this.groups.delete(seq.groupId);
    this.outbox.push({ seq, finished: true, ...(kvTransferParams ? { kvTransferParams } : {}) });
  }

  private pollConnector(connector: KvConnector): void {
    const { doneSending, doneRecving } = connector.getFinished();
    if (doneRecving.size) {
      const bad = connector.getBlockIdsWithLoadErrors();
      for (const id of doneRecving) {
        const seq = this.byId.get(id);
        if (!seq || seq.status !== 'waiting_for_remote_kv') continue;
        if (seq.aborted) {
          this.end(seq);
          continue;
        }
        let failedFrom: number | null = null;
        if (bad.size) {
          const i = seq.blockTable.findIndex((b) => bad.has(b));
          if (i >= 0) failedFrom = i * this.blockManager.blockSize;
        }
        this.scheduler.onLoadDone(seq, failedFrom);
      }
    }
    for (const id of doneSending) {
      const seq = this.scheduler.release(id);
      if (seq && this.finalPending.delete(id)) this.emitFinal(seq);
      else if (this.sentHeld.delete(id)) this.byId.delete(id);
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
