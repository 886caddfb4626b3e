// The engine's KV-event publisher (vLLM's ZmqEventPublisher): the block manager reports prefix-cache
// blocks stored and evicted (KvEventSink); events of one event-loop turn (one engine step) become one
// KVEventBatch, sent on a ZeroMQ PUB socket as [topic, seq u64 BE, msgpack payload] (wire.ts).
// Never blocks the engine: sink calls only append to an array; a background pump sends one batch at a
// time. Batches waiting beyond max_queue_size are dropped (oldest first) and counted; a subscriber
// slower than the PUB high-water mark loses messages inside ZeroMQ (PUB semantics), which it sees as a
// gap in the sequence numbers. With replay_endpoint, a ROUTER socket answers
// [start seq (8 bytes BE)] with every buffered [seq, payload] from there, then [-1, ""] (vLLM's replay).
import * as zmq from 'zeromq';
import { Counter, type Registry } from 'prom-client';
import { getLogger } from '../util/logger.js';
import { bindsEndpoint, isWildcard, type KvEventsConfig } from './config.js';
import { decodeSeq, encodeBatch, encodeSeq, MEDIUM_GPU, WIRE_LIMITS, type KvEvent } from './wire.js';
import type { KvEventsCurve } from './curve.js';
import { admitClientKey, KV_EVENTS_ZAP_DOMAIN } from './zap.js';

const log = getLogger('kv-events');

/** What the block manager reports. Calls must be cheap and never throw. */
export interface KvEventSink {
  /** `hashes[i]` names the block of tokens[i*blockSize, (i+1)*blockSize); `parent` is the block before hashes[0]. */
  stored(hashes: string[], parent: string | null, tokens: number[], blockSize: number): void;
  removed(hashes: string[]): void;
  cleared(): void;
}

const END_SEQ = encodeSeq(-1n);
const REPLAY_SEND_TIMEOUT_MS = 1000;

export class KvEventPublisher implements KvEventSink {
  /** batches sent on the PUB socket / dropped because the queue was full */
  published = 0;
  dropped = 0;
  private pending: KvEvent[] = [];
  private flushScheduled = false;
  private readonly queue: { seq: bigint; payload: Uint8Array }[] = [];
  private readonly replayBuffer: { seq: bigint; payload: Uint8Array }[] = [];
  private nextSeq = 0n;
  private pumping: Promise<void> | null = null;
  private closed = false;
  private lastDropLog = 0;
  private readonly topic: Buffer;

  private constructor(
    private readonly cfg: KvEventsConfig,
    private readonly pub: zmq.Publisher,
    private readonly replay: zmq.Router | null,
    readonly endpoint: string, // the PUB endpoint as bound (port resolved) or connected
    readonly replayEndpoint: string | null,
    private readonly dataParallelRank: number,
    private readonly releaseZap: (() => void) | null,
  ) {
    this.topic = Buffer.from(cfg.topic, 'utf8');
    if (replay) void this.serveReplay(replay);
  }

  /** `curve`: keys derived from the internal secret (curve.ts); then both sockets are CurveZMQ servers
   *  admitting only the derived client key. null = plaintext (vLLM's wire, for vLLM collectors). */
  static async start(cfg: KvEventsConfig, dataParallelRank = 0, curve: KvEventsCurve | null = null): Promise<KvEventPublisher> {
    const secure = curve ? { curveServer: true, curveSecretKey: curve.server.secretKey, curvePublicKey: curve.server.publicKey, zapDomain: KV_EVENTS_ZAP_DOMAIN } : {};
    const releaseZap = curve ? await admitClientKey(curve.client.publicKey) : null;
    const pub = new zmq.Publisher({ sendHighWaterMark: cfg.hwm, linger: 0, ...secure });
    let ep = cfg.endpoint;
    let replay: zmq.Router | null = null;
    try {
      if (bindsEndpoint(ep)) {
        await pub.bind(ep);
        ep = pub.lastEndpoint ?? ep;
      } else pub.connect(ep);
      if (isWildcard(cfg.endpoint)) log.warn(`KV events published on every interface (${cfg.endpoint}): they carry prompt token ids; prefer a loopback endpoint`);
      let rep: string | null = null;
      if (cfg.replayEndpoint) {
        replay = new zmq.Router({ linger: 0, sendTimeout: REPLAY_SEND_TIMEOUT_MS, maxMessageSize: 1024, ...secure });
        await replay.bind(cfg.replayEndpoint);
        rep = replay.lastEndpoint ?? cfg.replayEndpoint;
      }
      log.info(`KV events: publishing on ${ep}${cfg.topic ? ` (topic '${cfg.topic}')` : ''}${rep ? `, replay on ${rep}` : ''}; ${curve ? 'CurveZMQ, subscribers must hold the internal secret' : 'plaintext (no internal secret, or --kv-events-plaintext): any local process can subscribe'}`);
      return new KvEventPublisher(cfg, pub, replay, ep, rep, dataParallelRank, releaseZap);
    } catch (e) {
      pub.close();
      replay?.close();
      releaseZap?.();
      throw e;
    }
  }

  stored(hashes: string[], parent: string | null, tokens: number[], blockSize: number): void {
    this.add({ type: 'BlockStored', blockHashes: hashes, parentBlockHash: parent, tokenIds: tokens, blockSize, loraId: null, medium: MEDIUM_GPU });
  }

  removed(hashes: string[]): void {
    const last = this.pending[this.pending.length - 1];
    if (last?.type === 'BlockRemoved' && last.blockHashes.length + hashes.length <= WIRE_LIMITS.maxHashes) last.blockHashes.push(...hashes);
    else this.add({ type: 'BlockRemoved', blockHashes: [...hashes], medium: MEDIUM_GPU });
  }

  cleared(): void {
    this.add({ type: 'AllBlocksCleared' });
  }

  private add(e: KvEvent): void {
    if (this.closed) return;
    this.pending.push(e);
    if (this.pending.length >= WIRE_LIMITS.maxEvents) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Pending events -> one batch on the send queue (dropping the oldest batch when full). */
  private flush(): void {
    this.flushScheduled = false;
    if (!this.pending.length || this.closed) return;
    const events = this.pending;
    this.pending = [];
    const payload = encodeBatch({ ts: Date.now() / 1000, events, dataParallelRank: this.dataParallelRank });
    this.queue.push({ seq: this.nextSeq++, payload });
    while (this.queue.length > this.cfg.maxQueueSize) {
      this.queue.shift();
      this.dropped++;
      const now = Date.now();
      if (now - this.lastDropLog > 10_000) {
        this.lastDropLog = now;
        log.warn(`KV events: send queue full (${this.cfg.maxQueueSize} batches), ${this.dropped} dropped so far`);
      }
    }
    this.pumping ??= this.pump().finally(() => {
      this.pumping = null;
    });
  }

  private async pump(): Promise<void> {
    while (this.queue.length && !this.closed) {
      const b = this.queue.shift()!;
      try {
        await this.pub.send([this.topic, encodeSeq(b.seq), b.payload]);
        this.published++;
      } catch (e) {
        if (this.closed) return;
        this.dropped++;
        log.warn(`KV events: send failed: ${(e as Error).message}`);
      }
      this.replayBuffer.push(b);
      if (this.replayBuffer.length > this.cfg.bufferSteps) this.replayBuffer.shift();
    }
  }

  private async serveReplay(sock: zmq.Router): Promise<void> {
    try {
      for await (const msg of sock) {
        if (this.closed) return;
        // [identity, "", start_seq] from a REQ client, [identity, start_seq] from a DEALER
        const id = msg[0]!;
        const seqFrame = msg[msg.length - 1]!;
        let start: bigint;
        try {
          if (msg.length < 2 || msg.length > 3) throw new Error('bad frame count');
          start = decodeSeq(seqFrame);
        } catch {
          log.warn('KV events: ignored a malformed replay request');
          continue;
        }
        try {
          for (const b of this.replayBuffer.slice()) if (b.seq >= start) await sock.send([id, '', encodeSeq(b.seq), b.payload]);
          await sock.send([id, '', END_SEQ, '']);
        } catch {
          /* a client that stopped reading: its replay is abandoned */
        }
      }
    } catch {
      /* socket closed */
    }
  }

  /** pdserve:kv_events_published_total / _dropped_total (batches) on an engine's /metrics. */
  registerMetrics(registry: Registry): void {
    const mirror = (name: string, help: string, read: () => number) => {
      let last = 0;
      new Counter({ name, help, registers: [registry], collect() { const v = read(); this.inc(v - last); last = v; } });
    };
    mirror('pdserve:kv_events_published_total', 'KV-event batches sent on the ZeroMQ PUB socket.', () => this.published);
    mirror('pdserve:kv_events_dropped_total', 'KV-event batches dropped (send queue full or send failed).', () => this.dropped);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    await this.pumping?.catch(() => undefined);
    this.closed = true;
    this.pub.close();
    this.replay?.close();
    this.releaseZap?.();
  }
}
