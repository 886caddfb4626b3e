// One engine's KV-event stream, read by the router: a ZeroMQ SUB socket connected to the engine's PUB
// endpoint, each message [topic, seq, payload] decoded (wire.ts) and handed to onEvents. Hostile bytes:
// a message over MAX_MESSAGE_BYTES is refused by ZeroMQ itself; a malformed one is counted and dropped;
// nothing a peer sends can throw out of the loop. A sequence number that goes back means the engine
// restarted (its cache is empty): onReset runs before its events. A jump forward counts the batches lost.
import * as zmq from 'zeromq';
import { decodeBatch, decodeSeq, type KvEvent } from './wire.js';
import type { KvEventsCurve } from './curve.js';

// Memory a peer can make the router hold: at most RECEIVE_HWM messages of at most MAX_MESSAGE_BYTES
// queued in ZeroMQ (256 MiB worst case; a real engine's batch is tens of KiB). Beyond that ZeroMQ drops,
// which shows as lost sequence numbers.
export const MAX_MESSAGE_BYTES = 1024 * 1024;
const RECEIVE_HWM = 256;

export interface SubscriberCounters {
  batches: number;
  events: number;
  malformed: number;
  lost: number; // batches missing from the sequence
  resets: number;
}

export interface SubscriberOptions {
  endpoint: string; // tcp://host:port of the engine's PUB socket
  topic?: string; // subscription prefix ('' = all)
  onEvents: (events: KvEvent[]) => void;
  onReset: () => void;
  onMalformed?: (why: string) => void;
  /** CurveZMQ client keys (from the internal secret; the engine must use the same secret), or plaintext */
  curve?: KvEventsCurve | null;
}

export class KvEventSubscriber {
  readonly counters: SubscriberCounters = { batches: 0, events: 0, malformed: 0, lost: 0, resets: 0 };
  private readonly sock: zmq.Subscriber;
  private lastSeq: bigint | null = null;
  private closed = false;
  private readonly loop: Promise<void>;

  constructor(readonly opts: SubscriberOptions) {
    const c = opts.curve;
    const secure = c ? { curveServerKey: c.server.publicKey, curvePublicKey: c.client.publicKey, curveSecretKey: c.client.secretKey } : {};
    this.sock = new zmq.Subscriber({ maxMessageSize: MAX_MESSAGE_BYTES, receiveHighWaterMark: RECEIVE_HWM, linger: 0, reconnectInterval: 200, reconnectMaxInterval: 5_000, ...secure });
    this.sock.connect(opts.endpoint);
    this.sock.subscribe(opts.topic ?? '');
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let msg: Buffer[];
      try {
        msg = await this.sock.receive();
      } catch {
        return; // closed
      }
      this.handle(msg);
    }
  }

  /** One message; never throws. Exposed for tests of hostile frames. */
  handle(msg: readonly Uint8Array[]): void {
    try {
      if (msg.length !== 3) throw new Error(`${msg.length} frames (want topic, seq, payload)`);
      const seq = decodeSeq(msg[1]!);
      const batch = decodeBatch(msg[2]!);
      if (this.lastSeq !== null && seq <= this.lastSeq) {
        this.counters.resets++;
        this.opts.onReset();
      } else if (this.lastSeq !== null && seq > this.lastSeq + 1n) this.counters.lost += Number(seq - this.lastSeq - 1n);
      this.lastSeq = seq;
      this.counters.batches++;
      this.counters.events += batch.events.length;
      this.opts.onEvents(batch.events);
    } catch (e) {
      this.counters.malformed++;
      this.opts.onMalformed?.((e as Error).message);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
    await this.loop.catch(() => undefined);
  }
}
