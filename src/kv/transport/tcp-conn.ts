// One client connection of the tcp KV transport: connect, mutual handshake, then ops one at a time.
// Receiving uses net's `onread` with a buffer generator: header and control bytes land in small
// buffers, DATA bytes land straight in the destination spans of the local region (no concatenation, no
// staging copy). Sending corks a WRITE's header and Buffers that view the region (one writev), waiting
// for drain between batches.
// A connection that breaks mid-op fails that op; it is never reused (the stream position is unknown).
import net from 'node:net';
import { checkServerProof, clientProof, newNonce, NONCE_BYTES, PROOF_BYTES } from '../../security/handshake.js';
import { checkCompatible, checkIdentity, checkLayout } from './compat.js';
import { viewOf, type Span } from './region.js';
import {
  decodeError,
  encodeBlockOp,
  encodeNotify,
  Frame,
  frame,
  HANDSHAKE_CTX,
  header,
  HEADER_BYTES,
  parseHeader,
  parseHelloInfo,
  type Header,
  type HelloInfo,
} from './tcp-frames.js';
import { KvTransportError, TRANSPORT_VERSION, type KvRegion, type NotifyKind, type PeerInfo } from './transport.js';

export interface ConnOptions {
  host: string;
  port: number;
  key: Buffer;
  region: KvRegion;
  hello: HelloInfo;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
}

interface Expect {
  tag: number;
  /** a DATA header arrived: the spans it fills (throw to refuse) */
  data?(h: Header): Span[];
  dataDone?(): void;
  control(h: Header, payload: Buffer): void;
  fail(e: Error): void;
}

const SEND_BATCH = 32 * 1024 * 1024;
const SCRATCH = Buffer.alloc(16);

export class TcpClientConn {
  peer!: PeerInfo;
  private sock!: net.Socket;
  private closed = false;
  private want: 'header' | 'control' | 'data' = 'header';
  private readonly hdrBuf = Buffer.alloc(HEADER_BYTES);
  private hdrFill = 0;
  private hdr: Header | null = null;
  private ctl = Buffer.alloc(0);
  private ctlFill = 0;
  private spans: Span[] = [];
  private spanI = 0;
  private spanOff = 0;
  private expect: Expect | null = null;
  private nextTag = 1;
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private closeListeners: Array<() => void> = [];

  private constructor(private readonly o: ConnOptions) {}

  /** Connects and handshakes; rejects with KvTransportError (auth, mismatch, timeout, closed). */
  static open(o: ConnOptions): Promise<TcpClientConn> {
    const c = new TcpClientConn(o);
    return c.start().then(() => c);
  }

  get isOpen(): boolean {
    return !this.closed;
  }
  /** ops queued or running */
  get load(): number {
    return this.pending;
  }

  onClose(f: () => void): void {
    if (this.closed) f();
    else this.closeListeners.push(f);
  }

  private start(): Promise<void> {
    const o = this.o;
    return new Promise<void>((resolve, reject) => {
      const arm = (stage: string, ms: number) => setTimeout(() => this.destroy(new KvTransportError('timeout', `KV peer ${o.host}:${o.port}: ${stage} timed out after ${ms} ms`)), ms);
      let timer = arm('connect', o.connectTimeoutMs);
      const nonce = newNonce();
      this.expect = {
        tag: 0,
        fail: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        control: (h, p) => {
          if (h.type === Frame.ERROR) throw decodeError(p);
          if (h.type === Frame.CHALLENGE) {
            if (p.length !== NONCE_BYTES + PROOF_BYTES) throw new KvTransportError('protocol', 'bad CHALLENGE');
            const sn = Buffer.from(p.subarray(0, NONCE_BYTES));
            if (!checkServerProof(o.key, HANDSHAKE_CTX, nonce, sn, p.subarray(NONCE_BYTES)))
              throw new KvTransportError('auth', `KV peer ${o.host}:${o.port} failed authentication (it does not hold this deployment's internal secret)`);
            const proof = clientProof(o.key, HANDSHAKE_CTX, nonce, sn);
            this.sock.write(frame(Frame.PROOF, 0, Buffer.concat([proof, Buffer.from(JSON.stringify(o.hello))])));
            return;
          }
          if (h.type === Frame.WELCOME) {
            const info = parseHelloInfo(p);
            const identity = checkIdentity(info.identity);
            const layout = checkLayout(info.layout);
            checkCompatible(o.region.identity, identity, info.version, info.compatHash);
            this.peer = { instanceId: info.instanceId, identity, layout, compatHash: info.compatHash, transport: 'tcp', version: info.version };
            clearTimeout(timer);
            this.expect = null;
            this.sock.setTimeout(o.idleTimeoutMs, () => {
              if (!this.pending) this.destroy(new KvTransportError('closed', 'idle'));
            });
            resolve();
            return;
          }
          throw new KvTransportError('protocol', `unexpected frame ${h.type} during the handshake`);
        },
      };
      this.sock = net.connect({
        host: o.host,
        port: o.port,
        noDelay: true,
        onread: { buffer: () => this.nextBuffer(), callback: (n: number) => this.onBytes(n) },
      });
      this.sock.on('connect', () => {
        clearTimeout(timer);
        timer = arm('handshake', o.handshakeTimeoutMs);
        const hello = Buffer.alloc(2 + NONCE_BYTES);
        hello.writeUInt16LE(TRANSPORT_VERSION, 0);
        nonce.copy(hello, 2);
        this.sock.write(frame(Frame.HELLO, 0, hello));
      });
      this.sock.on('error', (e) => this.destroy(new KvTransportError('closed', `KV peer ${o.host}:${o.port}: ${e.message}`)));
      this.sock.on('close', () => this.destroy(new KvTransportError('closed', `KV peer ${o.host}:${o.port} closed the connection`)));
    });
  }

  destroy(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.sock?.destroy();
    const x = this.expect;
    this.expect = null;
    x?.fail(e);
    for (const f of this.closeListeners.splice(0)) f();
  }

  private nextBuffer(): Buffer {
    if (this.closed) return SCRATCH;
    if (this.want === 'data') {
      const [off, len] = this.spans[this.spanI]!;
      return viewOf(this.o.region.bytes, off + this.spanOff, len - this.spanOff);
    }
    if (this.want === 'control') return this.ctl.subarray(this.ctlFill);
    return this.hdrBuf.subarray(this.hdrFill);
  }

  private onBytes(n: number): boolean {
    if (this.closed) return false;
    try {
      if (this.want === 'data') {
        this.spanOff += n;
        if (this.spanOff === this.spans[this.spanI]![1]) {
          this.spanI++;
          this.spanOff = 0;
          if (this.spanI === this.spans.length) {
            this.want = 'header';
            const x = this.expect!;
            this.expect = null;
            x.dataDone!();
          }
        }
      } else if (this.want === 'control') {
        this.ctlFill += n;
        if (this.ctlFill === this.ctl.length) {
          this.want = 'header';
          this.deliver(this.hdr!, this.ctl);
        }
      } else {
        this.hdrFill += n;
        if (this.hdrFill === HEADER_BYTES) {
          this.hdrFill = 0;
          const h = parseHeader(this.hdrBuf);
          const x = this.expect;
          if (!x || (x.tag !== h.tag && h.tag !== 0)) throw new KvTransportError('protocol', `unexpected frame ${h.type} (tag ${h.tag})`);
          if (h.type === Frame.DATA) {
            if (!x.data) throw new KvTransportError('protocol', 'unexpected DATA');
            this.spans = x.data(h).filter((s) => s[1] > 0);
            this.spanI = 0;
            this.spanOff = 0;
            if (this.spans.length) this.want = 'data';
            else {
              this.expect = null;
              x.dataDone!();
            }
          } else {
            this.hdr = h;
            this.ctl = Buffer.allocUnsafe(h.len);
            this.ctlFill = 0;
            if (h.len) this.want = 'control';
            else this.deliver(h, this.ctl);
          }
        }
      }
    } catch (e) {
      this.destroy(e as Error);
      return false;
    }
    return true;
  }

  private deliver(h: Header, p: Buffer): void {
    this.expect!.control(h, p);
  }

  /** Runs ops one at a time in call order. */
  private enqueue<T>(body: (tag: number) => Promise<T>): Promise<T> {
    this.pending++;
    const run = this.tail.then(() => {
      if (this.closed) throw new KvTransportError('closed', `KV peer ${this.o.host}:${this.o.port}: connection closed`);
      return body(this.nextTag++ >>> 0 || this.nextTag++);
    });
    this.tail = run.catch(() => undefined).finally(() => this.pending--);
    return run;
  }

  /** Remote blocks `ids` into the local spans (wire order; `total` bytes). */
  read(requestId: string, ids: Int32Array, spans: Span[], total: number): Promise<void> {
    return this.enqueue(
      (tag) =>
        new Promise<void>((resolve, reject) => {
          this.expect = {
            tag,
            data: (h) => {
              if (h.len !== total) throw new KvTransportError('protocol', `READ answered with ${h.len} bytes, expected ${total}`);
              return spans;
            },
            dataDone: resolve,
            control: (h, p) => {
              this.expect = null;
              if (h.type === Frame.ERROR) reject(decodeError(p));
              else throw new KvTransportError('protocol', `unexpected frame ${h.type} answering READ`);
            },
            fail: reject,
          };
          this.sock.write(frame(Frame.READ, tag, encodeBlockOp(requestId, ids)));
        }),
    );
  }

  /** The local spans (wire order; `total` bytes) into remote blocks `ids`; resolves on the peer's OK. */
  write(requestId: string, ids: Int32Array, spans: Span[], total: number): Promise<void> {
    return this.enqueue(async (tag) => {
      const done = new Promise<void>((resolve, reject) => {
        this.expect = {
          tag,
          control: (h, p) => {
            this.expect = null;
            if (h.type === Frame.OK) resolve();
            else if (h.type === Frame.ERROR) reject(decodeError(p));
            else throw new KvTransportError('protocol', `unexpected frame ${h.type} answering WRITE`);
          },
          fail: reject,
        };
      });
      done.catch(() => undefined);
      const s = this.sock;
      s.cork();
      s.write(frame(Frame.WRITE, tag, encodeBlockOp(requestId, ids)));
      s.write(header(Frame.DATA, tag, total));
      let batch = 0;
      for (const [off, len] of spans) {
        const more = s.write(viewOf(this.o.region.bytes, off, len));
        batch += len;
        if (batch >= SEND_BATCH && !more) {
          s.uncork();
          await drainedOrClosed(s, done);
          if (this.closed) break;
          s.cork();
          batch = 0;
        }
      }
      s.uncork();
      await done;
    });
  }

  notify(kind: NotifyKind, requestId: string): Promise<boolean> {
    return this.enqueue(
      (tag) =>
        new Promise<boolean>((resolve, reject) => {
          this.expect = {
            tag,
            control: (h, p) => {
              this.expect = null;
              if (h.type === Frame.OK) resolve(p.length > 0 && p[0] === 1);
              else if (h.type === Frame.ERROR) reject(decodeError(p));
              else throw new KvTransportError('protocol', `unexpected frame ${h.type} answering NOTIFY`);
            },
            fail: reject,
          };
          this.sock.write(frame(Frame.NOTIFY, tag, encodeNotify(kind, requestId)));
        }),
    );
  }
}

function drainedOrClosed(s: net.Socket, done: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const fin = () => {
      s.off('drain', fin);
      s.off('close', fin);
      resolve();
    };
    s.on('drain', fin);
    s.on('close', fin);
    done.then(fin, fin);
  });
}
