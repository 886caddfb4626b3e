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
import { Rng } from '../util/rng.js';
import { greedyRows } from '../native/binding.js';
import { PdsError } from '../util/errors.js';

const log = getLogger('engine');
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
  }

  addRequest(req: GenerateRequest): Sequence {
    if (this.byId.has(req.requestId)) throw new PdsError('PDS_ERR_BAD_REQUEST', `request id ${req.requestId} is already in use`);
    const maxBlocksNeeded = this.blockManager.blocksFor(Math.min(this.args.maxModelLen, req.promptTokenIds.length + req.sampling.maxTokens));
    if (maxBlocksNeeded > this.blockManager.numBlocks)
      throw new PdsError('PDS_ERR_CONTEXT_LENGTH', `request needs ${maxBlocksNeeded} KV blocks but the cache has ${this.blockManager.numBlocks}`);
    const seq = new Sequence(req.requestId, req.promptTokenIds, req.sampling, req.kvTransferParams);
    if (req.sampling.seed !== null) seq.rng = new Rng(req.sampling.seed);
    this.byId.set(req.requestId, seq);
    this.scheduler.add(seq);
    return seq;
  }

  /** Ends a request from outside (client abort, or a stop string found by the output processor). */
  finishRequest(requestId: string, reason: FinishReason, stopReason: string | number | null = null): void {
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
        scheduled: out.scheduled.map(({ seq, numNewTokens }) => ({
          req: connectorView(seq),
          numNewTokens,
          isPrefillDone: seq.numComputedTokens + numNewTokens >= seq.numPromptTokens,
        })),
      });
      saves = meta.saves;
      connector.startLoadKv(meta);
    }
    if (out.scheduled.length) {
      const t0 = TRACE_STEPS ? performance.now() : 0;
      const run = await this.runner.run(out.scheduled, (seqs) => this.planSampling(seqs));
      const t1 = TRACE_STEPS ? performance.now() : 0;
      if (connector) {
        for (let l = 0; l < this.args.numLayers; l++) connector.saveKvLayer(l);
        if (this.args.overlapKvSaves) this.saveInBackground(connector, saves);
        else await connector.waitForSave();
      }
      this.postprocess(out.scheduled, run);
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
      host[r] = !backendCanSample(sp, seq.numOutputTokens, this.args.eosTokenIds);
      arrays.temperature[r] = sp.temperature;
      arrays.topP[r] = sp.topP;
      arrays.minP[r] = sp.minP;
      arrays.topK[r] = sp.topK;
      if (!host[r] && sp.temperature >= GREEDY_EPS) arrays.u[r] = Math.min((seq.rng ?? this.rng).random(), 0.99999994);
    });
    return { arrays, hostRows: host, wantLogits: host.some((h) => h) };
  }

  private postprocess(scheduled: ReadonlyArray<{ seq: Sequence; numNewTokens: number }>, { logits, tokens, plan, sampled }: RunResult): void {
    const bm = this.blockManager;
    for (const { seq, numNewTokens } of scheduled) {
      seq.numComputedTokens += numNewTokens;
      bm.commitFullBlocks(seq.blockTable, seq.blockHashes, seq.tokenIds, seq.numComputedTokens);
    }
    const V = this.runner.vocabSize;
    sampled.forEach((seq, r) => {
      if (seq.status === 'finished') return;
      let tokenId: number;
      let logprob: TokenLogprob | undefined;
      if (tokens && plan && !plan.hostRows[r]) tokenId = tokens[r]!;
      else {
        if (!logits) throw new Error('internal: no logits for a host-sampled row');
        const row = logits.subarray(r * V, (r + 1) * V);
        ({ tokenId, logprob } = sampleRow(row, {
          sampling: seq.sampling,
          promptTokenIds: seq.promptTokenIds,
          outputCounts: seq.outputCounts,
          numOutputTokens: seq.numOutputTokens,
          eosTokenIds: this.args.eosTokenIds,
          rng: seq.rng ?? this.rng,
        }));
      }
      if (seq.numOutputTokens === 0) seq.firstTokenTime = performance.now();
      seq.appendToken(tokenId, logprob);
      const stop = this.checkStop(seq, tokenId);
      if (stop) {
        seq.finishReason = stop.reason;
        seq.stopReason = stop.stopReason;
        this.end(seq);
      } else this.outbox.push({ seq, finished: false });
    });
  }

  private checkStop(seq: Sequence, tokenId: number): { reason: FinishReason; stopReason: number | null } | null {
    const sp = seq.sampling;
    if (seq.numOutputTokens >= sp.minTokens) {
      if (!sp.ignoreEos && this.args.eosTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: null };
      if (sp.stopTokenIds.includes(tokenId)) return { reason: 'stop', stopReason: tokenId };
    }
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
    let fin: { delayFree: boolean; kvTransferParams?: Record<string, unknown> } = { delayFree: false };
    const connector = this.args.connector;
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
