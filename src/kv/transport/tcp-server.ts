// The serving half of the tcp KV transport: accepts peers, authenticates them with the internal secret
// (security/handshake.ts), checks their KV identity, then answers READ (sends block bytes straight from
// the region: one corked batch of Buffers that view the region, no copy), WRITE (incoming bytes copied
// from the socket's chunks straight into the destination blocks) and NOTIFY.
// Hostile input: frames are bounded (tcp-frames.ts), block ids range-checked, ops authorized by the
// hooks, a connection that does not finish the handshake within handshakeTimeoutMs or stays idle past
// idleTimeoutMs (stallTimeoutMs while a transfer is under way) is closed; at most maxConnections.
import net from 'node:net';
import { checkClientProof, newNonce, serverProof, NONCE_BYTES, PROOF_BYTES } from '../../security/handshake.js';
import type { Logger } from '../../util/logger.js';
import { checkCompatible, checkIdentity, checkLayout, compatHash } from './compat.js';
import { checkBlockIds, spansOf, viewOf, wireBytes, type Span } from './region.js';
import {
  decodeBlockOp,
  decodeNotify,
  encodeError,
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
import { KvTransportError, TRANSPORT_VERSION, type KvRegion, type PeerInfo, type ServeHooks } from './transport.js';

export interface TcpServeOptions {
  key: Buffer;
  region: KvRegion;
  instanceId: string;
  hooks: ServeHooks;
  log: Logger;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  stallTimeoutMs: number;
  maxConnections: number;
  /** Largest DATA frame accepted (a WRITE's bytes). */
  maxOpBytes: number;
}

/** Bytes sent per batch before waiting for the socket to drain. */
const SEND_BATCH = 32 * 1024 * 1024;

export function helloInfoOf(region: KvRegion, instanceId: string): HelloInfo {
  return { instanceId, identity: region.identity, layout: region.layout, compatHash: compatHash(region.identity), version: TRANSPORT_VERSION };
}

export class TcpServeConn {
  private state: 'hello' | 'proof' | 'ready' | 'closed' = 'hello';
  private hdr: Header | null = null;
  private readonly hdrBuf = Buffer.alloc(HEADER_BYTES);
  private hdrFill = 0;
  private ctl: Buffer | null = null;
  private ctlFill = 0;
  /** incoming DATA of a WRITE: destination spans (null = discard), bytes left */
  private sink: { spans: Span[] | null; i: number; off: number; left: number; requestId: string; ids: Int32Array; tag: number; refused: Error | null } | null = null;
  private pendingWrite: { tag: number; requestId: string; ids: Int32Array; refused: Error | null } | null = null;
  private chunks: Buffer[] = [];
  private busy = false;
  private clientNonce: Buffer | null = null;
  private serverNonce: Buffer | null = null;
  private peer: PeerInfo | null = null;
  private readonly hsTimer: NodeJS.Timeout;

  constructor(
    private readonly sock: net.Socket,
    private readonly o: TcpServeOptions,
    private readonly onClose: () => void,
  ) {
    sock.setNoDelay(true);
    this.hsTimer = setTimeout(() => this.fail(new KvTransportError('timeout', 'handshake timeout')), o.handshakeTimeoutMs);
    sock.setTimeout(o.idleTimeoutMs, () => this.fail(new KvTransportError('timeout', this.busy ? 'transfer stalled' : 'idle')));
    sock.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.pump();
    });
    sock.on('error', () => this.close());
    sock.on('close', () => this.close());
  }

  get inFlight(): boolean {
    return this.busy || this.sink !== null;
  }

  /** Closes at once (transport shutdown). */
  destroyNow(): void {
    this.close();
  }

  private close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.hsTimer);
    this.sock.destroy();
    this.chunks = [];
    this.onClose();
  }

  private fail(e: unknown, tag = 0): void {
    if (this.state === 'closed') return;
    if (!(e instanceof KvTransportError && e.reason === 'timeout')) {
      try {
        this.sock.write(frame(Frame.ERROR, tag, encodeError(e)));
      } catch {
        /* closing anyway */
      }
    }
    if (e instanceof KvTransportError && e.reason !== 'timeout') this.o.log.warn(`KV transport: closing a connection from ${this.sock.remoteAddress}: ${e.message}`);
    this.sock.end();
    const sock = this.sock;
    setTimeout(() => sock.destroy(), 50).unref();
    this.state = 'closed';
    clearTimeout(this.hsTimer);
    this.chunks = [];
    this.onClose();
  }

  /** Consumes buffered chunks while not sending (a READ reply pauses parsing: one op at a time). */
  private pump(): void {
    try {
      while (!this.busy && this.state !== 'closed' && this.chunks.length) {
        const c = this.chunks[0]!;
        const used = this.consume(c);
        if (used >= c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(used);
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** Consumes a prefix of c; returns how many bytes. */
  private consume(c: Buffer): number {
    if (this.sink) {
      const s = this.sink;
      const n = Math.min(c.length, s.left);
      if (s.spans && this.o.hooks.writable && !this.o.hooks.writable(s.requestId)) {
        s.spans = null;
        s.refused = new KvTransportError('refused', `the write target of request ${s.requestId} was revoked`);
      }
      let done = 0;
      while (done < n) {
        if (!s.spans) {
          done = n;
          break;
        }
        const [off, len] = s.spans[s.i]!;
        const k = Math.min(n - done, len - s.off);
        c.copy(viewOf(this.o.region.bytes, off + s.off, k), 0, done, done + k);
        done += k;
        s.off += k;
        if (s.off === len) {
          s.i++;
          s.off = 0;
        }
      }
      s.left -= n;
      if (s.left === 0) this.writeLanded();
      return n;
    }
    if (!this.hdr) {
      const k = Math.min(c.length, HEADER_BYTES - this.hdrFill);
      c.copy(this.hdrBuf, this.hdrFill, 0, k);
      this.hdrFill += k;
      if (this.hdrFill < HEADER_BYTES) return k;
      this.hdrFill = 0;
      const h = parseHeader(this.hdrBuf);
      if (h.type === Frame.DATA) this.startSink(h);
      else {
        this.hdr = h;
        this.ctl = Buffer.allocUnsafe(h.len);
        this.ctlFill = 0;
        if (h.len === 0) this.control();
      }
      return k;
    }
    const k = Math.min(c.length, this.hdr.len - this.ctlFill);
    c.copy(this.ctl!, this.ctlFill, 0, k);
    this.ctlFill += k;
    if (this.ctlFill === this.hdr.len) this.control();
    return k;
  }

  private startSink(h: Header): void {
    const w = this.pendingWrite;
    if (this.state !== 'ready' || !w || w.tag !== h.tag) throw new KvTransportError('protocol', 'DATA without a WRITE');
    this.pendingWrite = null;
    const expect = wireBytes(this.o.region.layout, w.ids.length);
    if (h.len !== expect) throw new KvTransportError('protocol', `WRITE of ${w.ids.length} blocks needs ${expect} bytes, DATA has ${h.len}`);
    this.sink = { spans: w.refused ? null : spansOf(this.o.region.layout, w.ids), i: 0, off: 0, left: h.len, requestId: w.requestId, ids: w.ids, tag: h.tag, refused: w.refused };
    this.sock.setTimeout(this.o.stallTimeoutMs);
    if (h.len === 0) this.writeLanded();
  }

  private writeLanded(): void {
    const s = this.sink!;
    this.sink = null;
    this.sock.setTimeout(this.o.idleTimeoutMs);
    if (s.refused) {
      this.sock.write(frame(Frame.ERROR, s.tag, encodeError(s.refused)));
      return;
    }
    this.sock.write(frame(Frame.OK, s.tag, Buffer.from([1])));
    this.o.hooks.onWritten?.(s.requestId, s.ids, this.peer!);
  }

  private control(): void {
    const h = this.hdr!;
    const p = this.ctl!;
    this.hdr = null;
    this.ctl = null;
    if (this.state === 'hello') {
      if (h.type !== Frame.HELLO || p.length !== 2 + NONCE_BYTES) throw new KvTransportError('protocol', 'expected HELLO');
      const v = p.readUInt16LE(0);
      if (v !== TRANSPORT_VERSION) throw new KvTransportError('mismatch', `KV transport version mismatch: server ${TRANSPORT_VERSION}, client ${v}`);
      this.clientNonce = Buffer.from(p.subarray(2));
      this.serverNonce = newNonce();
      const proof = serverProof(this.o.key, HANDSHAKE_CTX, this.clientNonce, this.serverNonce);
      this.sock.write(frame(Frame.CHALLENGE, 0, Buffer.concat([this.serverNonce, proof])));
      this.state = 'proof';
      return;
    }
    if (this.state === 'proof') {
      if (h.type !== Frame.PROOF || p.length < PROOF_BYTES) throw new KvTransportError('protocol', 'expected PROOF');
      if (!checkClientProof(this.o.key, HANDSHAKE_CTX, this.clientNonce!, this.serverNonce!, p.subarray(0, PROOF_BYTES)))
        throw new KvTransportError('auth', 'peer failed authentication (wrong or missing internal secret)');
      const info = parseHelloInfo(p.subarray(PROOF_BYTES));
      const identity = checkIdentity(info.identity);
      const layout = checkLayout(info.layout);
      checkCompatible(this.o.region.identity, identity, info.version, info.compatHash);
      this.peer = { instanceId: info.instanceId, identity, layout, compatHash: info.compatHash, transport: 'tcp', version: info.version };
      clearTimeout(this.hsTimer);
      this.state = 'ready';
      this.sock.write(frame(Frame.WELCOME, 0, Buffer.from(JSON.stringify(helloInfoOf(this.o.region, this.o.instanceId)))));
      return;
    }
    // ready
    if (this.pendingWrite) throw new KvTransportError('protocol', 'expected DATA after WRITE');
    if (h.type === Frame.READ) return this.read(h.tag, p);
    if (h.type === Frame.WRITE) {
      const { requestId, ids } = decodeBlockOp(p);
      checkBlockIds(this.o.region.layout, ids);
      if (wireBytes(this.o.region.layout, ids.length) > this.o.maxOpBytes) throw new KvTransportError('protocol', `WRITE over the ${this.o.maxOpBytes}-byte op limit`);
      const ok = this.o.hooks.authorize?.('write', requestId, ids, this.peer!) ?? true;
      this.pendingWrite = { tag: h.tag, requestId, ids, refused: ok === true ? null : new KvTransportError('refused', ok) };
      return;
    }
    if (h.type === Frame.NOTIFY) {
      const { kind, requestId } = decodeNotify(p);
      const matched = this.o.hooks.onNotify?.(kind, requestId, this.peer!) ?? false;
      this.sock.write(frame(Frame.OK, h.tag, Buffer.from([matched ? 1 : 0])));
      return;
    }
    throw new KvTransportError('protocol', `unexpected frame type ${h.type}`);
  }

  private read(tag: number, p: Buffer): void {
    const { requestId, ids } = decodeBlockOp(p);
    const l = this.o.region.layout;
    try {
      checkBlockIds(l, ids);
    } catch (e) {
      this.sock.write(frame(Frame.ERROR, tag, encodeError(e)));
      return;
    }
    const ok = this.o.hooks.authorize?.('read', requestId, ids, this.peer!) ?? true;
    if (ok !== true) {
      this.sock.write(frame(Frame.ERROR, tag, encodeError(new KvTransportError('refused', ok))));
      return;
    }
    const total = wireBytes(l, ids.length);
    if (total > this.o.maxOpBytes) {
      this.sock.write(frame(Frame.ERROR, tag, encodeError(new KvTransportError('refused', `READ over the ${this.o.maxOpBytes}-byte op limit`))));
      return;
    }
    this.busy = true;
    this.sock.pause();
    this.sock.setTimeout(this.o.stallTimeoutMs);
    this.send(tag, spansOf(l, ids), total)
      .catch((e) => this.fail(e))
      .finally(() => {
        this.busy = false;
        if (this.state === 'closed') return;
        this.sock.setTimeout(this.o.idleTimeoutMs);
        this.sock.resume();
        this.pump();
      });
  }

  /** DATA header + the spans, corked in batches; waits for drain between batches (backpressure). */
  private async send(tag: number, spans: Span[], total: number): Promise<void> {
    const s = this.sock;
    const bytes = this.o.region.bytes;
    s.cork();
    s.write(header(Frame.DATA, tag, total));
    let batch = 0;
    for (const [off, len] of spans) {
      const more = s.write(viewOf(bytes, off, len));
      batch += len;
      if (batch >= SEND_BATCH && !more) {
        s.uncork();
        await drained(s);
        if (this.state === 'closed') throw new KvTransportError('closed', 'connection closed during a READ');
        s.cork();
        batch = 0;
      }
    }
    s.uncork();
    // done only once the kernel has taken every byte: until then the stall timeout watches the send
    if (s.writableLength > 0) await drained(s);
    if (this.state === 'closed') throw new KvTransportError('closed', 'connection closed during a READ');
  }
}

function drained(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
  });
}
