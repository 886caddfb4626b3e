// Client of a kv-server: one TCP connection, requests matched to replies by request id.
// Never hangs: every request has a timeout; a timed-out request closes the connection (the server
// then releases this client's pins and allocations, so nothing leaks). While the server is down,
// requests fail fast with PDS_ERR_UNAVAILABLE and reconnects are tried with exponential backoff.
// Each new connection says HELLO first; `epoch` counts connections (pins do not survive a reconnect).
import { connect, type Socket } from 'node:net';
import { PdsError } from '../../util/errors.js';
import { FrameReader, Op, Status, encodeHeader, isReadError, type Frame } from './protocol.js';

export interface KvClientOptions {
  host: string;
  port: number;
  timeoutMs: number; // per request (and per connect)
  backoffMs: number; // first reconnect delay; doubles up to 16x
}

export interface HelloInfo {
  poolSize: number;
  pageSize: number;
  maxPayload: number;
  nonce: Buffer;
  poolFile: string;
  segmentSize: number;
}

export interface Reply {
  status: Status;
  payload: Buffer;
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class KvClient {
  epoch = 0;
  hello: HelloInfo | null = null;
  /** Called after HELLO on every new connection, before any queued request runs. */
  onConnect: (hello: HelloInfo) => void = () => {};
  private sock: Socket | null = null;
  private connecting: Promise<void> | null = null;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private retryAt = 0;
  private backoff: number;
  private closed = false;
  private failures = 0; // connect failures and lost connections since the last good HELLO
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(readonly opts: KvClientOptions) {
    this.backoff = opts.backoffMs;
  }

  get connected(): boolean {
    return this.sock !== null && this.connecting === null;
  }

  /** Not connected, and the last attempt (or connection) failed: callers should not wait on a retry. */
  get down(): boolean {
    return !this.connected && this.failures > 0;
  }

  /** Starts a (re)connect in the background when none is in flight and the backoff allows it. */
  kick(force = false): void {
    if (this.connecting || this.closed || this.connected) return;
    if (force) this.retryAt = 0;
    if (Date.now() >= this.retryAt) void this.ensureConnected().catch(() => {});
  }

  /** After a failure: try again in the background once the backoff has passed (until close()). */
  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick(true); // timers may fire a little before retryAt
    }, Math.max(0, this.retryAt - Date.now()));
    this.retryTimer.unref();
  }

  private unavailable(why: string): PdsError {
    return new PdsError('PDS_ERR_UNAVAILABLE', `kv-server ${this.opts.host}:${this.opts.port} unavailable: ${why}`);
  }

  private async ensureConnected(): Promise<void> {
    if (this.closed) throw this.unavailable('client closed');
    if (this.sock && !this.connecting) return;
    if (this.connecting) return this.connecting;
    if (Date.now() < this.retryAt) throw this.unavailable(`retrying in ${this.retryAt - Date.now()} ms`);
    this.connecting = this.open().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async open(): Promise<void> {
    const sock = connect({ host: this.opts.host, port: this.opts.port, noDelay: true });
    const reader = new FrameReader(0xffffffff);
    this.sock = sock;
    sock.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (isReadError(f)) return void sock.destroy(new Error(`bad reply frame (${f.kind})`));
        this.onFrame(f);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => this.onClose(sock));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(this.unavailable('connect timed out')), this.opts.timeoutMs);
        sock.once('connect', () => (clearTimeout(t), resolve()));
        sock.once('close', () => (clearTimeout(t), reject(this.unavailable('connection refused or closed'))));
      });
      const r = await this.send(Op.HELLO, []);
      if (r.status !== Status.OK) throw this.unavailable(`HELLO answered status ${r.status}`);
      const p = r.payload;
      const pathLen = p.readUInt16LE(32);
      this.hello = {
        poolSize: Number(p.readBigUInt64LE(0)),
        pageSize: p.readUInt32LE(8),
        maxPayload: p.readUInt32LE(12),
        nonce: Buffer.from(p.subarray(16, 32)),
        poolFile: p.toString('utf8', 34, 34 + pathLen),
        segmentSize: Number(p.readBigUInt64LE(34 + pathLen)),
      };
      this.epoch++;
      this.failures = 0;
      this.backoff = this.opts.backoffMs;
      this.onConnect(this.hello);
    } catch (e) {
      this.failures++;
      sock.destroy();
      this.sock = null;
      this.retryAt = Date.now() + this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.opts.backoffMs * 16);
      this.scheduleRetry();
      throw e instanceof PdsError ? e : this.unavailable((e as Error).message);
    }
  }

  private onFrame(f: Frame): void {
    const p = this.pending.get(f.reqId);
    if (!p) return; // its request timed out already
    this.pending.delete(f.reqId);
    clearTimeout(p.timer);
    p.resolve({ status: f.status, payload: f.payload });
  }

  private onClose(sock: Socket): void {
    if (this.sock !== sock) return;
    this.sock = null;
    this.failures++;
    if (!this.closed) {
      this.retryAt = Math.max(this.retryAt, Date.now() + this.backoff);
      this.scheduleRetry();
    }
    const err = this.unavailable('connection closed');
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  private send(op: Op, parts: readonly Uint8Array[], timeoutMs = this.opts.timeoutMs): Promise<Reply> {
    const sock = this.sock;
    if (!sock || sock.destroyed) return Promise.reject(this.unavailable('not connected'));
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new PdsError('PDS_ERR_KV_TIMEOUT', `kv-server ${this.opts.host}:${this.opts.port}: op ${Op[op]} timed out after ${timeoutMs} ms`));
        sock.destroy(); // the server releases what this connection held
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const len = parts.reduce((a, b) => a + b.byteLength, 0);
      sock.write(encodeHeader(op, 0, id, len));
      for (const part of parts) sock.write(part);
    });
  }

  /** One request; resolves with the reply (any status), rejects on timeout or when the server is down. */
  async request(op: Op, parts: readonly Uint8Array[], timeoutMs?: number): Promise<Reply> {
    await this.ensureConnected();
    return this.send(op, parts, timeoutMs);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.sock?.destroy();
  }
}
