// Client of a kv-server: one TCP connection, requests matched to replies by request id.
// Never hangs: every request has a timeout; a timed-out request closes the connection (the server
// then releases this client's pins and allocations, so nothing leaks). While the server is down,
// requests fail fast with PDS_ERR_UNAVAILABLE and reconnects are tried with exponential backoff.
// Each new connection authenticates first (HELLO + AUTH, kv-auth.ts): a server that cannot prove the
// internal secret (or has none while this client has one) is refused, logged, and treated as down.
// `epoch` counts connections (pins do not survive a reconnect). While connected, a PING goes out when
// nothing else did for a third of the server's idle timeout.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { PdsError } from '../../util/errors.js';
import { getLogger } from '../../util/logger.js';
import { newNonce } from '../../security/handshake.js';
import { FrameReader, Op, Status, encodeHeader, isReadError, type Frame } from './protocol.js';
import { WRITER_ID_BYTES, clientAnswer, clientSession, decodeHelloReply, encodeAuth, type SessionInfo } from './kv-auth.js';

const log = getLogger('kv');

export interface KvClientOptions {
  host: string;
  port: number;
  timeoutMs: number; // per request (and per connect)
  backoffMs: number; // first reconnect delay; doubles up to 16x
  /** The internal secret (resolveInternalSecret().key); null/absent = none (only an open server is accepted). */
  secret?: Buffer | null;
  /** Owner of the chunks this client commits; default random per client (kept across reconnects). */
  writerId?: Buffer;
}

/** What the authenticated server announced (pool file, its nonce, limits). */
export type HelloInfo = SessionInfo;

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
  private heartbeat: NodeJS.Timeout | null = null;
  private lastSent = 0;
  private lastRefusalLog = 0;
  private warnedOpen = false;
  readonly writerId: Buffer;
  /** Why the last connection was refused (authentication), or null. */
  refusal: string | null = null;

  constructor(readonly opts: KvClientOptions) {
    this.backoff = opts.backoffMs;
    this.writerId = opts.writerId ?? randomBytes(WRITER_ID_BYTES);
    if (this.writerId.length !== WRITER_ID_BYTES) throw new RangeError(`writerId must be ${WRITER_ID_BYTES} bytes`);
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
      this.hello = await this.authenticate();
      this.epoch++;
      this.failures = 0;
      this.refusal = null;
      this.backoff = this.opts.backoffMs;
      this.startHeartbeat(sock, this.hello.idleTimeoutMs);
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

  /** HELLO + AUTH on a fresh socket; throws (PDS_ERR_UNAVAILABLE) when either side refuses the other. */
  private async authenticate(): Promise<HelloInfo> {
    const key = this.opts.secret ?? null;
    const cn = newNonce();
    const h = await this.send(Op.HELLO, [cn]);
    if (h.status !== Status.OK) throw this.refused(`HELLO answered ${Status[h.status] ?? h.status}: ${h.payload.toString('utf8')} (a kv-server of another protocol version?)`);
    const hr = decodeHelloReply(h.payload);
    if (!hr) throw this.refused('malformed HELLO reply (a kv-server of another protocol version?)');
    const ans = clientAnswer(key, cn, hr);
    if ('refuse' in ans) throw this.refused(ans.refuse);
    const a = await this.send(Op.AUTH, [encodeAuth(ans.proof, this.writerId)]);
    if (a.status !== Status.OK) throw this.refused(`AUTH answered ${Status[a.status] ?? a.status}: ${a.payload.toString('utf8')}`);
    const info = clientSession(key, cn, hr.serverNonce, a.payload);
    if (!info) throw this.refused('its session info does not verify against the internal secret');
    if (!key && !this.warnedOpen) {
      this.warnedOpen = true;
      log.warn(`kv-server ${this.opts.host}:${this.opts.port}: neither side has an internal secret; the connection is unauthenticated (pass --internal-secret-file to both)`);
    }
    return info;
  }

  /** An authentication refusal: logged (at most every 30 s), then handled like a down server. */
  private refused(why: string): PdsError {
    const msg = `kv-server ${this.opts.host}:${this.opts.port} refused: ${why}`;
    this.refusal = msg;
    const now = Date.now();
    if (now - this.lastRefusalLog > 30_000) {
      this.lastRefusalLog = now;
      log.error(`${msg}; not using it (KV lookups count as misses, prompts are computed locally)`);
    }
    return new PdsError('PDS_ERR_UNAVAILABLE', msg);
  }

  private startHeartbeat(sock: Socket, idleMs: number): void {
    this.stopHeartbeat();
    if (!(idleMs > 0)) return;
    const every = Math.max(10, Math.floor(idleMs / 3));
    this.heartbeat = setInterval(() => {
      if (this.sock !== sock || Date.now() - this.lastSent < every) return;
      void this.send(Op.PING, []).catch(() => {});
    }, every);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
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
    this.stopHeartbeat();
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
      this.lastSent = Date.now();
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
    this.stopHeartbeat();
    this.sock?.destroy();
  }
}
