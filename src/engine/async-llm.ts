// The engine as the HTTP server sees it (EngineClient): requests in, output increments out.
// Runs the step loop on the event loop; each forward runs on a native worker thread, so HTTP I/O
// proceeds while the model computes.
import type { EngineClient, EngineStats, GenerateRequest, KvLoadTiming, ModelInfo, RequestOutput } from './protocol.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { LLMEngine, StepOutput } from './llm-engine.js';
import type { Sequence } from './sequence.js';
import type { KvConnector } from './connector/base.js';
import { RequestOutputState, type Detokenizer } from './output-processor.js';
import { AsyncQueue } from '../util/async-queue.js';
import { PdsError } from '../util/errors.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('async_llm');

interface Live {
  queue: AsyncQueue<RequestOutput>;
  /** one per sequence of the request (n > 1: parallel sampling), by choice index */
  states: RequestOutputState[];
  /** sequences whose final output went out */
  done: Set<number>;
  promptLogprobsSent: boolean;
  onAbort?: () => void;
  signal?: AbortSignal;
}

export class AsyncLLM implements EngineClient {
  private readonly live = new Map<string, Live>();
  private looping = false;
  private healthy = true;
  private closed = false;

  constructor(
    private readonly engine: LLMEngine,
    readonly tokenizer: Tokenizer,
    readonly model: ModelInfo,
    private readonly makeDetokenizer: (skipSpecialTokens: boolean, promptTokenIds: readonly number[]) => Detokenizer,
    private readonly connector: KvConnector | null = null,
    private readonly onFree?: () => void,
  ) {}

  generate(req: GenerateRequest, signal?: AbortSignal): AsyncIterable<RequestOutput> {
    if (this.closed) throw new PdsError('PDS_ERR_UNAVAILABLE', 'engine is shutting down');
    if (!this.healthy) throw new PdsError('PDS_ERR_UNAVAILABLE', 'engine is unhealthy after a failed step');
    if (signal?.aborted) throw new PdsError('PDS_ERR_BAD_REQUEST', 'request aborted before it started');
    this.engine.addRequest(req);
    const live: Live = {
      queue: new AsyncQueue<RequestOutput>(),
      states: Array.from({ length: req.n ?? 1 }, () =>
        new RequestOutputState(req.requestId, req.promptTokenIds, req.sampling, this.makeDetokenizer(req.sampling.skipSpecialTokens, req.promptTokenIds))),
      done: new Set(),
      promptLogprobsSent: false,
      signal,
    };
    if (signal) {
      live.onAbort = () => this.abort(req.requestId);
      signal.addEventListener('abort', live.onAbort, { once: true });
    }
    this.live.set(req.requestId, live);
    this.kick();
    return live.queue;
  }

  abort(requestId: string): void {
    if (!this.live.has(requestId)) return;
    this.engine.finishRequest(requestId, 'abort');
    this.deliver(this.engine.takeOutputs());
    this.kick();
  }

  private kick(): void {
    if (this.looping || this.closed) return;
    this.looping = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.engine.hasWork() && !this.closed) {
        const outs = await this.engine.step();
        this.deliver(outs);
        // let HTTP I/O run between steps; idle-wait a little when only remote work is pending
        if (outs.length === 0 && this.engine.scheduler.running.length === 0) await new Promise((r) => setTimeout(r, 1));
        else await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      this.healthy = false;
      const msg = e instanceof Error ? e.message : String(e);
      log.error(`engine step failed: ${msg}`);
      const err = new PdsError('PDS_ERR_INTERNAL', `engine step failed: ${msg}`);
      for (const [id, l] of this.live) {
        l.queue.fail(err);
        this.detach(id, l);
      }
    } finally {
      this.looping = false;
      this.onFree?.();
    }
  }

  private deliver(outs: StepOutput[]): void {
    for (const { seq, finished, kvTransferParams, error } of outs) {
      const l = this.live.get(seq.groupId);
      const state = l?.states[seq.index];
      if (!l || !state || l.done.has(seq.index)) continue;
      if (error) {
        // the whole request fails (its KV could not be loaded): the server answers with the error
        this.detach(seq.groupId, l);
        l.queue.fail(error);
        continue;
      }
      const newTokenIds = seq.pendingTokenIds.splice(0);
      const newLogprobs = seq.pendingLogprobs.splice(0);
      const out = state.next({
        newTokenIds,
        finished,
        base: {
          finished,
          finishReason: finished ? (seq.finishReason ?? 'stop') : undefined,
          stopReason: seq.stopReason,
          numCachedTokens: seq.numCachedTokens,
          ...(seq.firstScheduledAt !== null ? { queueTimeS: (seq.firstScheduledAt - seq.arrivedAt) / 1000 } : {}),
          ...(seq.firstScheduledAt !== null && seq.kvLookupAt !== null ? { kvLoad: kvLoadOf(seq) } : {}),
          newLogprobs: seq.sampling.logprobs !== null ? newLogprobs : undefined,
          ...(kvTransferParams ? { kvTransferParams } : {}),
        },
      });
      if (l.states.length > 1) out.index = seq.index;
      if (seq.promptLogprobs && !l.promptLogprobsSent) {
        out.promptLogprobs = seq.promptLogprobs;
        l.promptLogprobsSent = true;
      }
      if (state.stoppedBy !== null && !finished) {
        // a stop string ended it: stop the engine side too (its final output is dropped)
        this.engine.finishSequence(seq.requestId, 'stop', state.stoppedBy);
        this.engine.takeOutputs();
      }
      l.queue.push(out);
      if (out.finished && seq.forksPending > 0) {
        // ended (aborted) before it forked: its children end with it, having produced nothing
        for (let i = 1; i < l.states.length; i++) {
          l.queue.push({ ...out, index: i, newTokenIds: [], newText: '', ...(out.newLogprobs ? { newLogprobs: [] } : {}) });
          l.done.add(i);
        }
      }
      if (out.finished) {
        l.done.add(seq.index);
        if (l.done.size === l.states.length) {
          this.detach(seq.groupId, l);
          l.queue.end();
        }
      }
    }
  }

  private detach(id: string, l: Live): void {
    this.live.delete(id);
    if (l.signal && l.onAbort) l.signal.removeEventListener('abort', l.onAbort);
  }

  stats(): EngineStats {
    const kv = this.connector?.stats?.();
    return kv ? { ...this.engine.stats(), kvConnector: kv } : this.engine.stats();
  }

  checkIntegrity(): void {
    this.engine.checkIntegrity();
  }

  isHealthy(): boolean {
    return this.healthy && !this.closed;
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    for (const id of [...this.live.keys()]) this.abort(id);
    await this.engine.drainSaves();
    await this.connector?.shutdown();
  }
}

/** The connector's timing of a sequence that has run (kvLookupAt set). */
function kvLoadOf(seq: Sequence): KvLoadTiming {
  const rel = (t: number | null) => (t === null ? null : (t - seq.arrivedAt) / 1000);
  const loadStartS = rel(seq.kvLoadStartAt);
  const loadEndS = rel(seq.kvLoadDoneAt);
  return {
    lookupStartS: rel(seq.kvLookupAt)!,
    loadStartS,
    loadEndS,
    loadS: loadStartS !== null && loadEndS !== null ? loadEndS - loadStartS : 0,
    tokens: seq.kvLoadedTokens,
    bytes: seq.kvLoadedBytes,
  };
}
