// Prefiller side of the tcp push (TcpConnector, kv_mode push): the KV of a request tagged push_id goes to
// the decoder's blocks as chunked prefill completes them, so the transfer runs under the prefill.
//
// Per push_id one Outgoing, created by whichever comes first: the prefill request's first scheduled
// chunk (noteStep) or the decoder's target (accept, from POST /v1/kv/push-target). After each forward
// (afterForward) every block whose tokens are all computed and that the target names is WRITten at once
// (one transport write per step, beside the next forward); once the last named block has landed, the
// decoder is notified 'done'. The request's blocks stay held (requestFinished delayFree) until then.
// It ends ('dropped', the decoder is notified 'abort' where it did not say so itself) when: a write
// fails (decoder gone), the decoder sends 'abort', the prefill request is aborted or preempted, or its
// lease expires (no target or no decoder heartbeat within leaseMs; a warning). Blocks are handed back
// (onFree) only once no write reads them any more.
import type { ConnectorRequest } from '../../engine/connector/base.js';
import { PdsError } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import type { TcpTransport } from '../transport/tcp-transport.js';
import type { PeerAddress } from '../transport/transport.js';
import type { PushTargetBody } from './push-target-route.js';

export const MAX_PUSHES = 4096;

interface Target {
  peer: PeerAddress;
  first: number;
  blockIds: number[];
  numTokens: number;
}

interface Outgoing {
  pushId: string;
  requestId: string | null;
  promptLen: number;
  blocks: number[];
  upto: number;
  target: Target | null;
  next: number; // next block index (request order) to write
  writes: Set<Promise<void>>;
  finished: boolean; // the request ended: its blocks are held for us
  ended: 'done' | 'dropped' | null;
  expiresAt: number;
}

export interface PushSenderOptions {
  transport: () => TcpTransport | null;
  blockSize: () => number;
  leaseMs: number;
  writeTimeoutMs: number;
  log: Logger;
  /** the request's blocks may be freed now (the connector reports doneSending) */
  onFree(requestId: string): void;
}

/** push_id of a producer-side request in push mode, else null. */
export function pushIdOf(req: ConnectorRequest): string | null {
  const p = req.kvTransferParams;
  if (!p || p.do_remote_decode !== true || p.kv_mode !== 'push') return null;
  return typeof p.push_id === 'string' && p.push_id.length > 0 && p.push_id.length <= 128 ? p.push_id : null;
}

export class PushSender {
  private readonly out = new Map<string, Outgoing>();
  private readonly stepped: Array<{ e: Outgoing; upto: number }> = [];
  private readonly notes = new Set<Promise<void>>(); // done / abort notifications in flight
  private sweeper: NodeJS.Timeout | null = null;
  readonly counters = { pushes: 0, pushedBlocks: 0, pushesDone: 0, pushesDropped: 0, pushesExpired: 0 };

  constructor(private readonly o: PushSenderOptions) {}

  get size(): number {
    return this.out.size;
  }

  start(): void {
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(50, Math.min(1000, this.o.leaseMs / 10)));
    this.sweeper.unref();
  }

  private entry(pushId: string): Outgoing {
    let e = this.out.get(pushId);
    if (!e) {
      if (this.out.size >= MAX_PUSHES) throw new PdsError('PDS_ERR_OVERLOADED', `${MAX_PUSHES} KV pushes are in flight on this prefiller`);
      e = { pushId, requestId: null, promptLen: 0, blocks: [], upto: 0, target: null, next: 0, writes: new Set(), finished: false, ended: null, expiresAt: Date.now() + this.o.leaseMs };
      this.out.set(pushId, e);
      this.counters.pushes++;
    }
    return e;
  }

  /** POST /v1/kv/push-target. */
  accept(t: PushTargetBody): { ok: true } {
    const bs = this.o.blockSize();
    const last = Math.ceil(t.num_tokens / bs);
    if (t.block_ids.length !== Math.max(0, last - t.first_block))
      throw new PdsError('PDS_ERR_BAD_REQUEST', `${t.block_ids.length} block ids for blocks ${t.first_block}..${last} of ${t.num_tokens} tokens`, 'block_ids');
    const known = this.out.get(t.push_id);
    if (known?.ended) throw new PdsError('PDS_ERR_NOT_FOUND', `KV push ${t.push_id} is over (${known.ended})`, 'push_id');
    if (known?.target) throw new PdsError('PDS_ERR_BAD_REQUEST', `KV push ${t.push_id} already has a target`, 'push_id');
    const e = this.entry(t.push_id);
    e.target = { peer: { host: t.host, port: t.port, instanceId: t.engine_id }, first: t.first_block, blockIds: t.block_ids, numTokens: t.num_tokens };
    e.next = Math.max(e.next, t.first_block);
    e.expiresAt = Date.now() + this.o.leaseMs;
    this.pump(e);
    return { ok: true };
  }

  /** buildConnectorMeta: a push request scheduled for numNewTokens more tokens this step. */
  noteStep(req: ConnectorRequest, pushId: string, numNewTokens: number): void {
    let e: Outgoing;
    try {
      e = this.entry(pushId);
    } catch (err) {
      this.o.log.warn(`Reqid: ${req.requestId}: ${(err as Error).message}; its KV is not pushed`);
      return;
    }
    if (e.ended) return;
    if (e.requestId !== null && e.requestId !== req.requestId) return this.drop(e, `push_id ${pushId} is used by two requests`);
    e.requestId = req.requestId;
    e.promptLen = req.promptTokenIds.length;
    // blocks already written must still be this request's (a preempted request gets new ones)
    for (let i = 0; i < Math.min(e.next, e.blocks.length); i++) if (req.blockIds[i] !== e.blocks[i]) return this.drop(e, 'the prefill request was preempted');
    e.blocks = [...req.blockIds];
    this.stepped.push({ e, upto: req.numComputedTokens + numNewTokens });
  }

  /** waitForSave (after the forward): this step's tokens are in the blocks. */
  afterForward(): void {
    for (const { e, upto } of this.stepped.splice(0)) {
      e.upto = Math.max(e.upto, upto);
      this.pump(e);
    }
  }

  /** requestFinished of a push request: whether its blocks must stay held (delayFree). */
  finished(req: ConnectorRequest, pushId: string, blockIds: readonly number[]): boolean {
    let e = this.out.get(pushId);
    if (e && e.requestId !== null && e.requestId !== req.requestId) return false;
    if (!e) {
      // ended before its first step: a tombstone, so a target that comes later is refused (404) at once
      if (req.finishReason !== 'abort' || this.out.size >= MAX_PUSHES) return false;
      e = this.entry(pushId);
      e.requestId = req.requestId;
      e.finished = true;
      e.ended = 'dropped';
      return false;
    }
    e.requestId = req.requestId;
    e.finished = true;
    if (req.finishReason === 'abort') this.drop(e, 'the prefill request was aborted');
    else {
      e.blocks = [...blockIds];
      e.upto = Math.max(e.upto, req.numComputedTokens);
      e.promptLen = req.promptTokenIds.length;
      this.pump(e);
    }
    if (e.ended && !e.writes.size) {
      this.out.delete(pushId);
      return false;
    }
    return true;
  }

  /** A notification from the decoder; undefined = not a push of ours. */
  onNotify(kind: 'done' | 'heartbeat' | 'abort', pushId: string): boolean | undefined {
    const e = this.out.get(pushId);
    if (!e) return undefined;
    if (kind === 'heartbeat') {
      if (e.ended === 'dropped') return false;
      e.expiresAt = Date.now() + this.o.leaseMs;
      return true;
    }
    if (kind === 'abort') this.drop(e, 'the decoder gave up on it', false);
    return true;
  }

  private pump(e: Outgoing): void {
    const t = e.target;
    const transport = this.o.transport();
    if (!t || e.ended || !transport || e.requestId === null) return;
    const bs = this.o.blockSize();
    const last = t.first + t.blockIds.length;
    if (last > Math.ceil(e.promptLen / bs) || t.numTokens > e.promptLen) return this.drop(e, `the decoder asks for ${t.numTokens} tokens of a ${e.promptLen}-token prompt`);
    const ready = Math.min(last, e.upto >= t.numTokens ? last : Math.floor(e.upto / bs), e.blocks.length);
    if (ready > e.next) {
      const local = Int32Array.from(e.blocks.slice(e.next, ready));
      const remote = Int32Array.from(t.blockIds.slice(e.next - t.first, ready - t.first));
      e.next = ready;
      const w: Promise<void> = transport
        .write(t.peer, local, remote, { requestId: e.pushId, timeoutMs: this.o.writeTimeoutMs })
        .then(
          () => {
            this.counters.pushedBlocks += local.length;
          },
          (err) => this.drop(e, `a KV write to ${t.peer.host}:${t.peer.port} failed: ${(err as Error).message}`),
        )
        .finally(() => {
          e.writes.delete(w);
          this.settle(e, last);
        });
      e.writes.add(w);
    }
    this.settle(e, last);
  }

  /** All named blocks written and landed: tell the decoder (its load ends); the blocks go back at once. */
  private settle(e: Outgoing, last: number): void {
    if (!e.ended && e.target && e.next >= last && !e.writes.size) {
      e.ended = 'done';
      this.counters.pushesDone++;
      const t = e.target;
      this.o.log.info(`Reqid: ${e.requestId}: KV push ${e.pushId}: ${t.blockIds.length} blocks written to ${t.peer.host}:${t.peer.port} (P2P tcp push)`);
      this.note(
        this.o.transport()!.notify(t.peer, 'done', e.pushId, { timeoutMs: 5000 }),
        (err) => this.o.log.warn(`KV push ${e.pushId}: the done notification to ${t.peer.host}:${t.peer.port} failed: ${err.message}`),
      );
    }
    this.release(e);
  }

  private note(x: Promise<unknown>, onError: (e: Error) => void = () => undefined): void {
    const n: Promise<void> = x.then(() => undefined, onError).finally(() => this.notes.delete(n));
    this.notes.add(n);
  }

  private release(e: Outgoing): void {
    if (!e.ended || e.writes.size) return;
    if (e.finished) {
      if (this.out.get(e.pushId) === e) this.out.delete(e.pushId);
      if (e.requestId !== null) this.o.onFree(e.requestId);
    }
  }

  /** Ends a push that will not complete; notifies the decoder unless it said so itself. */
  private drop(e: Outgoing, reason: string, notify = true, expired = false): void {
    if (e.ended) return;
    e.ended = 'dropped';
    if (expired) this.counters.pushesExpired++;
    else this.counters.pushesDropped++;
    this.o.log.warn(`${e.requestId ? `Reqid: ${e.requestId}: ` : ''}KV push ${e.pushId} dropped: ${reason}`);
    const t = e.target;
    const transport = this.o.transport();
    if (notify && t && transport) this.note(transport.notify(t.peer, 'abort', e.pushId, { timeoutMs: 5000 }));
    this.release(e);
  }

  /** Expires pushes whose lease ran out; forgets ended ones whose request never showed up. */
  sweep(now = Date.now()): void {
    for (const e of [...this.out.values()]) {
      if (e.expiresAt > now) continue;
      if (!e.ended) this.drop(e, `its KV lease expired after ${this.o.leaseMs / 1000} s (${e.target ? 'no heartbeat from the decoder' : 'no push target from a decoder'}); freeing its blocks`, true, true);
      else if (!e.writes.size && e.expiresAt + this.o.leaseMs <= now) this.out.delete(e.pushId); // tombstones, never-seen requests
    }
  }

  /** Shutdown: drops every push and waits for the writes that still read blocks. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const e of this.out.values()) this.drop(e, 'the engine is shutting down');
    await Promise.all([...this.out.values()].flatMap((e) => [...e.writes]));
    await Promise.all([...this.notes]);
  }
}
