// Decoder side of the tcp push (TcpConnector, kv_mode push). For a request whose blocks are allocated:
// a slot (push_id -> its blocks) opens, the prefiller is told where (signed POST /v1/kv/push-target to
// its API server), and the request waits (WAITING_FOR_REMOTE_KVS) until the prefiller's 'done'
// notification says every named block has landed. Only the prefiller's authenticated writes tagged
// push_id into exactly those blocks are admitted, and only while the slot is open: the slot closes
// (synchronously, so no later byte lands: ServeHooks.writable) on success, on the prefiller's 'abort',
// on timeout (timeoutMs from the start), on a failed or refused heartbeat (the prefiller died or
// dropped the push; heartbeats every heartbeatMs), and on cancel (the decode request was aborted);
// every failure but the prefiller's own abort tells the prefiller 'abort' (best effort).
import type { Logger } from '../../util/logger.js';
import type { TcpTransport } from '../transport/tcp-transport.js';
import { KvTransportError, type PeerAddress } from '../transport/transport.js';
import { PUSH_TARGET_PATH, type PushTargetBody } from './push-target-route.js';
import { signedJsonPost } from './signed-post.js';

export interface PushSource {
  /** the prefiller's API server (where the target goes) */
  api: { host: string; port: number };
  pushId: string;
}

export interface PushReceiverOptions {
  transport: () => TcpTransport | null;
  endpoint: () => { host: string; port: number } | null;
  key: Buffer;
  heartbeatMs: number;
  timeoutMs: number;
  log: Logger;
  /** how the target reaches the prefiller (default: the signed POST; tests call the producer directly) */
  sendTarget?: SendPushTarget;
}

export type SendPushTarget = (api: { host: string; port: number }, body: PushTargetBody, timeoutMs: number, signal?: AbortSignal) => Promise<unknown>;

interface Slot {
  requestId: string;
  pushId: string;
  blocks: Set<number>;
  landed: Set<number>;
  prefiller: PeerAddress | null;
  heartbeat: NodeJS.Timeout | null;
  deadline: NodeJS.Timeout | null;
  post: AbortController;
  settle(err: Error | null, tellPrefiller: boolean): void;
}

export class PushReceiver {
  private readonly slots = new Map<string, Slot>(); // by push_id
  private readonly byRequest = new Map<string, string>(); // decoder request id -> push_id
  private readonly notifies = new Set<Promise<unknown>>();

  private readonly send: SendPushTarget;

  constructor(private readonly o: PushReceiverOptions) {
    this.send = o.sendTarget ?? ((api, body, ms, signal) => signedJsonPost(o.key, api.host, api.port, PUSH_TARGET_PATH, body, ms, signal));
  }

  get size(): number {
    return this.slots.size;
  }

  /**
   * Opens the slot and sends the target; resolves once blocks [first, first+blockIds.length) of the
   * request have all landed (rejects, never hangs, past timeoutMs).
   */
  receive(requestId: string, src: PushSource, first: number, blockIds: readonly number[], numTokens: number): Promise<void> {
    const transport = this.o.transport();
    const me = this.o.endpoint();
    if (!transport || !me) return Promise.reject(new Error('this decoder does not serve KV writes (its tcp transport is not listening)'));
    if (this.slots.has(src.pushId)) return Promise.reject(new Error(`push_id ${src.pushId} is already being received`));
    const body: PushTargetBody = { push_id: src.pushId, first_block: first, block_ids: [...blockIds], num_tokens: numTokens, host: me.host, port: me.port, engine_id: transport.instanceId };
    if (!blockIds.length) {
      // nothing to receive (a full local prefix hit): the empty target still lets the prefiller free at once
      this.track(this.send(src.api, body, 5000).catch(() => undefined));
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const slot: Slot = {
        requestId,
        pushId: src.pushId,
        blocks: new Set(blockIds),
        landed: new Set(),
        prefiller: null,
        heartbeat: null,
        deadline: null,
        post: new AbortController(),
        settle: (err, tell) => {
          if (this.slots.get(src.pushId) !== slot) return;
          this.slots.delete(src.pushId);
          this.byRequest.delete(requestId);
          if (slot.heartbeat) clearInterval(slot.heartbeat);
          if (slot.deadline) clearTimeout(slot.deadline);
          slot.post.abort();
          if (err && tell && slot.prefiller) this.tell(slot.prefiller, 'abort', src.pushId);
          if (err) reject(err);
          else resolve();
        },
      };
      this.slots.set(src.pushId, slot);
      this.byRequest.set(requestId, src.pushId);
      slot.deadline = setTimeout(() => slot.settle(new KvTransportError('timeout', `the prefiller pushed ${slot.landed.size} of ${slot.blocks.size} blocks within ${this.o.timeoutMs} ms`), true), this.o.timeoutMs);
      this.send(src.api, body, Math.min(this.o.timeoutMs, 10_000), slot.post.signal).then(
        (r) => {
          const rep = r as { engine_id?: unknown; host?: unknown; port?: unknown } | null;
          if (!rep || typeof rep.engine_id !== 'string' || typeof rep.host !== 'string' || typeof rep.port !== 'number')
            return slot.settle(new Error(`${PUSH_TARGET_PATH}: the prefiller's reply names no transport`), false);
          slot.prefiller = { host: rep.host, port: rep.port, instanceId: rep.engine_id };
          if (this.slots.get(src.pushId) !== slot) return;
          slot.heartbeat = setInterval(() => this.beat(slot), this.o.heartbeatMs);
          slot.heartbeat.unref();
        },
        (e) => slot.settle(new Error(`telling the prefiller at ${src.api.host}:${src.api.port} where to push failed: ${(e as Error).message}`), false),
      );
    });
  }

  private beat(slot: Slot): void {
    const t = this.o.transport();
    if (!t || !slot.prefiller) return;
    const x = t.notify(slot.prefiller, 'heartbeat', slot.pushId, { timeoutMs: this.o.heartbeatMs }).then(
      (live) => {
        if (!live) slot.settle(new Error('the prefiller dropped the push (heartbeat refused)'), false);
      },
      (e) => slot.settle(new Error(`the prefiller is unreachable (heartbeat failed: ${(e as Error).message})`), false),
    );
    this.track(x);
  }

  private tell(peer: PeerAddress, kind: 'abort', pushId: string): void {
    const t = this.o.transport();
    if (t) this.track(t.notify(peer, kind, pushId, { timeoutMs: 5000 }).catch(() => undefined));
  }

  private track(x: Promise<unknown>): void {
    this.notifies.add(x);
    void x.finally(() => this.notifies.delete(x));
  }

  /** The decode request ended (client abort) while its push ran: close the slot now. */
  cancel(requestId: string): void {
    const id = this.byRequest.get(requestId);
    if (id !== undefined) this.slots.get(id)?.settle(new KvTransportError('aborted', 'the decode request was aborted'), true);
  }

  // ---- transport hooks (decoder's region) ----

  authorizeWrite(pushId: string, ids: Int32Array): true | string | undefined {
    const s = this.slots.get(pushId);
    if (!s) return undefined;
    for (const b of ids) if (!s.blocks.has(b)) return `block ${b} is not a push target of ${pushId}`;
    return true;
  }

  writable(pushId: string): boolean {
    return this.slots.has(pushId);
  }

  onWritten(pushId: string, ids: Int32Array): void {
    const s = this.slots.get(pushId);
    if (s) for (const b of ids) s.landed.add(b);
  }

  /** undefined = not a push being received here. */
  onNotify(kind: 'done' | 'heartbeat' | 'abort', pushId: string): boolean | undefined {
    const s = this.slots.get(pushId);
    if (!s) return undefined;
    if (kind === 'done') {
      if (s.landed.size === s.blocks.size) s.settle(null, false);
      else s.settle(new Error(`the prefiller said done after ${s.landed.size} of ${s.blocks.size} blocks`), true);
    } else if (kind === 'abort') s.settle(new Error('the prefiller aborted the push'), false);
    return true;
  }

  async close(): Promise<void> {
    for (const s of [...this.slots.values()]) s.settle(new KvTransportError('closed', 'the engine is shutting down'), true);
    await Promise.all([...this.notifies]);
  }
}
