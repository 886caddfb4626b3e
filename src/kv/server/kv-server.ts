// `pdserve kv-server`: a shared-memory KV pool (files in /dev/shm) plus a metadata server over TCP
// (protocol.ts). Same-host clients map the pool file and copy KV straight in/out of its pages; other
// hosts move bytes with PUT/GET (a PUT's bytes stream straight into pool pages). Bookkeeping: ChunkIndex
// (commit, pins, LRU, deferred free) over one ExtentAllocator per pool segment (pool-segments.ts); per
// connection: its uncommitted allocations and its pins, released when it closes.
// Hostile clients: every connection authenticates first (kv-auth.ts); each is bounded (frame sizes per
// op, uncommitted allocations, pins, queued reply bytes, frame/idle/auth timeouts; kv-server-options.ts);
// a chunk is deleted only by its writer (the writer id bound at AUTH) or by eviction; a bad frame costs
// only the connection that sent it.
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmdirSync, statSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { getLogger } from '../../util/logger.js';
import { ChunkIndex, type IndexEntry } from '../chunk-index.js';
import { ExtentAllocator } from './extent-allocator.js';
import { MAX_SEGMENT_BYTES, PoolSegments, segmentLengths } from './pool-segments.js';
import {
  CONTROL_MAX_PAYLOAD, FrameReader, KEY_BYTES, Op, PAGE_SIZE, POOL_MAGIC, PREAUTH_MAX_PAYLOAD, Status, type Frame,
  decodeKeyList, encodeHeader, isReadError, u64,
} from './protocol.js';
import { NONCE_BYTES } from '../../security/handshake.js';
import { POOL_NONCE_BYTES, decodeAuth, encodeHelloReply, serverChecksClient, serverHello, sessionReply } from './kv-auth.js';
import { isLoopback, resolveOptions, type KvServerOptions, type ResolvedKvServerOptions } from './kv-server-options.js';

export { MAX_POOL_BYTES, type KvServerOptions } from './kv-server-options.js';

const log = getLogger('kv-server');
/** Default parent of the private pool directory. */
export const SHM_DIR = '/dev/shm';

/** A pool file larger than its filesystem's free space would SIGBUS whoever first writes past it. */
function checkRoom(poolFile: string, poolSize: number): void {
  let st;
  try {
    st = statfsSync(dirname(poolFile));
  } catch {
    return; // the mapping itself reports a missing directory
  }
  let existing = 0;
  for (const f of [poolFile, ...Array.from({ length: Math.ceil(poolSize / MAX_SEGMENT_BYTES) }, (_, i) => `${poolFile}.${i + 1}`)])
    try {
      existing += statSync(f).blocks * 512; // a stale pool of ours is replaced
    } catch {
      /* absent */
    }
  const free = st.bavail * st.bsize + existing;
  if (poolSize > free)
    throw new RangeError(`pool size ${poolSize} bytes exceeds the free space of ${dirname(poolFile)} (${free} bytes); lower --pool-size or free shared memory`);
}

class Conn {
  /** HELLO's nonces (set by HELLO, checked by AUTH) */
  clientNonce: Buffer | null = null;
  serverNonce: Buffer | null = null;
  authed = false;
  /** hex writer id bound at AUTH: owns the chunks this connection commits */
  writer = '';
  readonly allocs = new Map<string, IndexEntry<number>>();
  uncommittedBytes = 0;
  readonly pins = new Map<string, IndexEntry<number>[]>();
  pinCount = 0;
  /** GET replies not yet taken by the socket: each holds a pin on its chunk */
  readonly sending = new Set<{ e: IndexEntry<number> }>();
  readonly openedAt = Date.now();
  lastActive = Date.now();
  /** when the frame now arriving began (0 = between frames) */
  frameStart = 0;
  /** since when reading is paused because replies are queued past maxInFlightBytes (0 = not) */
  stalledSince = 0;
  closing = false;
  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly reader: FrameReader,
  ) {}
}

export class KvServer {
  private readonly index: ChunkIndex<number>;
  private readonly allocs: ExtentAllocator[];
  private readonly conns = new Set<Conn>();
  private readonly nonce = randomBytes(POOL_NONCE_BYTES);
  private readonly quarantine = new Set<NodeJS.Timeout>();
  /** writer id of each committed (or being written) entry */
  private readonly owner = new WeakMap<IndexEntry<number>, string>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly lastWarn = new Map<string, { at: number; suppressed: number }>();
  private readonly counters = { authFailures: 0, refusedConnections: 0, timeouts: 0, forbidden: 0, limited: 0 };
  private nextConnId = 1;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    private readonly pool: PoolSegments,
    readonly opts: ResolvedKvServerOptions,
    /** the private directory holding the pool (removed at stop), or null for an explicit --pool-file */
    private readonly privateDir: string | null,
  ) {
    // Segment 0 starts with the header page. Offsets are pool-global.
    this.allocs = segmentLengths(opts.poolSize, opts.segmentSize).map((len, i) => {
      const base = i * opts.segmentSize + (i === 0 ? PAGE_SIZE : 0);
      return new ExtentAllocator(base, len - (i === 0 ? PAGE_SIZE : 0), PAGE_SIZE);
    });
    this.index = new ChunkIndex<number>(
      (size) => {
        for (const a of this.allocs) {
          const off = a.alloc(size);
          if (off !== null) return off;
        }
        return null;
      },
      (off, size) => this.allocs[Math.floor(off / opts.segmentSize)]!.release(off, size),
    );
    const tick = Math.max(20, Math.min(1000, opts.authTimeoutMs / 4, opts.frameTimeoutMs / 4, opts.idleTimeoutMs > 0 ? opts.idleTimeoutMs / 4 : 1000));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.sweeper.unref();
  }

  /** The largest extent any segment could hold. */
  private get maxChunk(): number {
    return Math.max(...this.allocs.map((a) => a.size));
  }

  static async start(o: KvServerOptions): Promise<KvServer> {
    const opts = resolveOptions(o);
    segmentLengths(opts.poolSize, opts.segmentSize); // validates segmentSize
    if (!opts.secret && !isLoopback(opts.host))
      throw new Error(`refusing to listen on ${opts.host} without an internal secret (anyone who reaches it could read and poison the pool); pass --internal-secret-file or listen on 127.0.0.1`);
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Fresh inodes every start: clients still mapping a previous pool never alias this one.
    let pool: PoolSegments;
    let privateDir: string | null = null;
    try {
      if (!opts.poolFile) {
        privateDir = mkdtempSync(join(SHM_DIR, 'pdserve-kv-')); // mode 0700, unpredictable name
        opts.poolFile = join(privateDir, 'pool');
      }
      checkRoom(opts.poolFile, opts.poolSize);
      pool = new PoolSegments(opts.poolFile, opts.poolSize, opts.segmentSize, true);
    } catch (e) {
      server.close();
      if (privateDir) rmdirSync(privateDir);
      throw e;
    }
    const s = new KvServer(server, pool, opts, privateDir);
    s.writePoolHeader();
    if (opts.prefault) for (const m of pool.maps) for (let off = 0; off < m.byteLength; off += 2 ** 26) m.fill(0, off === 0 && m === pool.maps[0] ? PAGE_SIZE : off, Math.min(m.byteLength, off + 2 ** 26));
    server.on('connection', (sock) => s.accept(sock));
    if (!opts.quiet) {
      log.info(
        `pdserve kv-server listening on ${opts.host}:${s.port}, pool size ${(opts.poolSize / 2 ** 30).toFixed(2)} GiB ` +
          `(${opts.poolSize} bytes), pool file ${opts.poolFile}${pool.maps.length > 1 ? ` (+${pool.maps.length - 1} more segments ${opts.poolFile}.N)` : ''}, page size ${PAGE_SIZE}, max frame payload ${opts.maxPayload} bytes`,
      );
      if (!opts.secret)
        log.warn(
          'NO INTERNAL SECRET: connections are not authenticated; any local user can read, evict and poison cached KV. ' +
            'Serving loopback clients only. Pass --internal-secret-file (pdserve up does) to authenticate every connection.',
        );
      else if (!isLoopback(opts.host)) log.warn(`listening beyond loopback on ${opts.host}: connections are authenticated but not encrypted (KV bytes cross the network in clear)`);
    }
    return s;
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : this.opts.port;
  }

  private writePoolHeader(): void {
    const seg0 = this.pool.view(0, PAGE_SIZE);
    const h = Buffer.from(seg0.buffer, seg0.byteOffset, PAGE_SIZE);
    h.fill(0);
    h.write(POOL_MAGIC, 0, 'ascii');
    this.nonce.copy(h, 8);
    h.writeBigUInt64LE(BigInt(this.opts.poolSize), 24);
  }

  /** At most one warning per kind every 10 s (a flood of bad clients must not flood the log). */
  private warn(kind: string, msg: string): void {
    const now = Date.now();
    const w = this.lastWarn.get(kind);
    if (w && now - w.at < 10_000) {
      w.suppressed++;
      return;
    }
    const extra = w?.suppressed ? ` (${w.suppressed} more like it since the last report)` : '';
    this.lastWarn.set(kind, { at: now, suppressed: 0 });
    if (!this.opts.quiet) log.warn(msg + extra);
  }

  private accept(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    let unauth = 0;
    for (const c of this.conns) if (!c.authed) unauth++;
    const why = !this.opts.secret && !isLoopback(socket.remoteAddress)
      ? `a non-loopback client (${socket.remoteAddress}) while the server has no internal secret`
      : this.conns.size >= this.opts.maxConnections
        ? `over --max-connections ${this.opts.maxConnections}`
        : unauth >= this.opts.maxUnauthenticated
          ? `over ${this.opts.maxUnauthenticated} connections still authenticating`
          : null;
    if (why) {
      this.counters.refusedConnections++;
      this.warn('refused', `refused a connection from ${socket.remoteAddress}: ${why}`);
      return void socket.destroy();
    }
    socket.setNoDelay(true);
    const conn: Conn = new Conn(
      this.nextConnId++,
      socket,
      new FrameReader((op) => (!conn.authed ? PREAUTH_MAX_PAYLOAD : op === Op.PUT ? this.opts.maxPayload : CONTROL_MAX_PAYLOAD), {
        op: Op.PUT,
        prefix: KEY_BYTES,
        target: (key, size) => {
          const t = this.putTarget(conn, key.toString('hex'), size);
          return { view: 'view' in t ? t.view : null, ctx: t };
        },
      }),
    );
    this.conns.add(conn);
    socket.on('data', (chunk: Buffer) => {
      const now = Date.now();
      conn.lastActive = now;
      let completed = 0;
      conn.reader.pushEach(chunk, (f) => {
        if (conn.closing) return false;
        completed++;
        if (isReadError(f)) {
          const status = f.kind === 'too_large' ? Status.TOO_LARGE : Status.BAD_REQUEST;
          const msg = f.kind === 'too_large' ? `frame payload ${f.length} > max ${conn.authed ? (f.op === Op.PUT ? this.opts.maxPayload : CONTROL_MAX_PAYLOAD) : PREAUTH_MAX_PAYLOAD} for op ${f.op}${conn.authed ? '' : ' before AUTH'}` : `${f.kind.replace('_', ' ')}`;
          this.warn('bad-frame', `connection ${conn.id} (${socket.remoteAddress}): ${msg}; closing it`);
          this.closeWith(conn, f.op, f.reqId, status, msg);
          return false;
        }
        this.handle(conn, f); // before the next frame is parsed: a PUT's target sees this frame's effects
        return !conn.closing;
      });
      if (!conn.reader.midFrame) conn.frameStart = 0;
      else if (completed || conn.frameStart === 0) conn.frameStart = now;
      if (socket.writableLength > this.opts.maxInFlightBytes && !conn.stalledSince && !conn.closing) {
        conn.stalledSince = now;
        socket.pause();
        socket.once('drain', () => {
          conn.stalledSince = 0;
          if (!conn.closing) socket.resume();
        });
      }
    });
    socket.on('error', () => {}); // 'close' follows and cleans up
    socket.on('close', () => this.release(conn));
  }

  /** Replies (when possible), stops reading and closes the connection. */
  private closeWith(conn: Conn, op: number, reqId: number, status: Status, msg: string): void {
    this.reply(conn, op, reqId, status, Buffer.from(msg));
    conn.closing = true;
    conn.socket.pause();
    conn.socket.end();
    setTimeout(() => conn.socket.destroy(), 1000).unref();
  }

  /** Timeouts: handshake, frame completion, unread replies, idle. */
  private sweep(): void {
    const now = Date.now();
    const o = this.opts;
    for (const c of this.conns) {
      if (c.closing) continue;
      const why = !c.authed && now - c.openedAt > o.authTimeoutMs
        ? `no AUTH within ${o.authTimeoutMs} ms`
        : c.frameStart && now - c.frameStart > o.frameTimeoutMs
          ? `a frame not completed within ${o.frameTimeoutMs} ms`
          : c.stalledSince && now - c.stalledSince > o.frameTimeoutMs
            ? `replies not read for ${o.frameTimeoutMs} ms`
            : o.idleTimeoutMs > 0 && now - c.lastActive > o.idleTimeoutMs
              ? `idle for ${o.idleTimeoutMs} ms`
              : null;
      if (!why) continue;
      this.counters.timeouts++;
      this.warn('timeout', `connection ${c.id} (${c.socket.remoteAddress}): ${why}; closing it`);
      c.closing = true;
      c.socket.destroy();
    }
  }

  /** A closed connection's uncommitted allocations and pins go back. */
  private release(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    const allocs = [...conn.allocs.values()];
    conn.allocs.clear();
    conn.uncommittedBytes = 0;
    if (allocs.length) {
      const t = setTimeout(() => {
        this.quarantine.delete(t);
        for (const e of allocs) this.endWrite(e, false);
      }, this.opts.allocQuarantineMs);
      this.quarantine.add(t);
    }
    for (const list of conn.pins.values()) for (const e of list) this.index.unpin(e);
    conn.pins.clear();
    conn.pinCount = 0;
    for (const t of conn.sending) this.index.unpin(t.e);
    conn.sending.clear();
  }

  private reply(conn: Conn, op: number, reqId: number, status: Status, ...parts: Uint8Array[]): void {
    const len = parts.reduce((a, p) => a + p.byteLength, 0);
    if (conn.socket.destroyed || !conn.socket.writable) return;
    conn.socket.write(encodeHeader(op, status, reqId, len));
    for (const p of parts) conn.socket.write(p);
  }

  /** Removes key's uncommitted allocation from the connection's books (the entry itself is the caller's). */
  private takeAlloc(conn: Conn, key: string): IndexEntry<number> | undefined {
    const e = conn.allocs.get(key);
    if (!e) return undefined;
    conn.allocs.delete(key);
    conn.uncommittedBytes -= e.size;
    return e;
  }

  /** A new allocation for this connection's writer. The writer holds a pin until commit/abort, so pages
   *  being written are never freed under it. */
  private beginWrite(conn: Conn, key: string, size: number): IndexEntry<number> | [Status, string] {
    if (!Number.isSafeInteger(size) || size <= 0 || size > this.maxChunk) return [Status.TOO_LARGE, `size ${size} does not fit a pool segment`];
    const prev = conn.allocs.get(key);
    if (prev && !prev.dead) return [Status.EXISTS, 'this connection is writing this chunk already'];
    if (prev) this.endWrite(this.takeAlloc(conn, key)!, false); // defensive: a hidden allocation never stays pinned
    if (conn.allocs.size >= this.opts.maxUncommitted) {
      this.counters.limited++;
      return [Status.LIMIT, `connection holds ${conn.allocs.size} uncommitted allocations (limit ${this.opts.maxUncommitted}); commit or abort first`];
    }
    if (conn.uncommittedBytes + size > this.opts.maxUncommittedBytes) {
      this.counters.limited++;
      return [Status.LIMIT, `connection holds ${conn.uncommittedBytes} uncommitted bytes; ${size} more exceeds the limit ${this.opts.maxUncommittedBytes}`];
    }
    const r = this.index.reserve(key, size);
    if (r.status === 'exists') return [Status.EXISTS, 'chunk exists or is being written'];
    if (r.status === 'full') return [Status.FULL, 'pool full: everything left is pinned or being written'];
    this.index.pin(r.entry);
    this.owner.set(r.entry, conn.writer);
    conn.allocs.set(key, r.entry);
    conn.uncommittedBytes += size;
    return r.entry;
  }

  /** Commit (true if the chunk is now visible) or abort a write begun by beginWrite. */
  private endWrite(e: IndexEntry<number>, commit: boolean): boolean {
    const ok = commit ? this.index.commit(e) : (this.index.abort(e), true);
    this.index.unpin(e);
    return ok;
  }

  /** FrameReader hook: where the bytes of a PUT go (straight into the pool), or why they are dropped. */
  private putTarget(conn: Conn, key: string, size: number): { view: Uint8Array; entry: IndexEntry<number> } | { status: Status; msg: string } {
    if (!conn.authed || conn.closing) return { status: Status.UNAUTHORIZED, msg: 'AUTH first' };
    let e = conn.allocs.get(key);
    if (e && e.size !== size) return { status: Status.BAD_REQUEST, msg: `PUT of ${size} bytes into an allocation of ${e.size}` };
    if (!e) {
      const r = this.beginWrite(conn, key, size);
      if (Array.isArray(r)) return { status: r[0], msg: r[1] };
      e = r;
    }
    return { view: this.pool.view(e.payload, size), entry: e };
  }

  /** false at the connection's pin limit. */
  private holdPin(conn: Conn, e: IndexEntry<number>): boolean {
    if (conn.pinCount >= this.opts.maxPins) return false;
    this.index.pin(e);
    conn.pinCount++;
    const list = conn.pins.get(e.key);
    if (list) list.push(e);
    else conn.pins.set(e.key, [e]);
    return true;
  }

  private dropPin(conn: Conn, key: string): boolean {
    const list = conn.pins.get(key);
    const e = list?.pop();
    if (!e) return false;
    if (list!.length === 0) conn.pins.delete(key);
    conn.pinCount--;
    this.index.unpin(e);
    return true;
  }

  /** HELLO and AUTH: the only ops before AUTH has succeeded. */
  private handshake(conn: Conn, f: Frame): void {
    const p = f.payload;
    const refuse = (msg: string) => {
      this.counters.authFailures++;
      this.warn('auth', `connection ${conn.id} (${conn.socket.remoteAddress}) refused: ${msg}`);
      this.closeWith(conn, f.op, f.reqId, Status.UNAUTHORIZED, msg);
    };
    if (f.op === Op.HELLO) {
      if (conn.clientNonce) return refuse('HELLO twice');
      if (p.length !== NONCE_BYTES) return refuse(`HELLO wants a ${NONCE_BYTES}-byte nonce (protocol version 2)`);
      conn.clientNonce = Buffer.from(p);
      conn.serverNonce = randomBytes(NONCE_BYTES);
      return this.reply(conn, f.op, f.reqId, Status.OK, encodeHelloReply(serverHello(this.opts.secret, conn.clientNonce, conn.serverNonce)));
    }
    if (f.op !== Op.AUTH || !conn.clientNonce || !conn.serverNonce) return refuse(`op ${f.op} before authentication (HELLO, AUTH first)`);
    const a = decodeAuth(p);
    if (!a) return refuse('malformed AUTH');
    if (!serverChecksClient(this.opts.secret, conn.clientNonce, conn.serverNonce, a.proof)) return refuse('bad proof of the internal secret');
    conn.authed = true;
    conn.writer = a.writerId.toString('hex');
    const info = {
      poolSize: this.opts.poolSize,
      pageSize: PAGE_SIZE,
      maxPayload: this.opts.maxPayload,
      nonce: this.nonce,
      poolFile: this.opts.poolFile,
      segmentSize: this.opts.segmentSize,
      idleTimeoutMs: this.opts.idleTimeoutMs,
    };
    this.reply(conn, f.op, f.reqId, Status.OK, sessionReply(this.opts.secret, conn.clientNonce, conn.serverNonce, info));
  }

  private handle(conn: Conn, f: Frame): void {
    if (!conn.authed) return this.handshake(conn, f);
    const p = f.payload;
    const ok = (...parts: Uint8Array[]) => this.reply(conn, f.op, f.reqId, Status.OK, ...parts);
    const fail = (s: Status, msg: string) => this.reply(conn, f.op, f.reqId, s, Buffer.from(msg));
    const keyAt = (off: number) => p.toString('hex', off, off + KEY_BYTES);
    try {
      switch (f.op) {
        case Op.HELLO:
        case Op.AUTH:
          return fail(Status.BAD_REQUEST, 'already authenticated');
        case Op.PING:
          return ok();
        case Op.ALLOC: {
          if (p.length !== KEY_BYTES + 8) return fail(Status.BAD_REQUEST, 'ALLOC wants key + u64 size');
          const r = this.beginWrite(conn, keyAt(0), Number(p.readBigUInt64LE(KEY_BYTES)));
          return Array.isArray(r) ? fail(r[0], r[1]) : ok(u64(r.payload));
        }
        case Op.COMMIT:
        case Op.ABORT: {
          if (p.length !== KEY_BYTES) return fail(Status.BAD_REQUEST, 'want a key');
          const e = this.takeAlloc(conn, keyAt(0));
          if (!e) return fail(Status.NOT_FOUND, 'no uncommitted allocation of this key on this connection');
          return this.endWrite(e, f.op === Op.COMMIT) ? ok() : fail(Status.NOT_FOUND, 'allocation was deleted before commit');
        }
        case Op.LOOKUP: {
          const l = decodeKeyList(p, true);
          if (!l) return fail(Status.BAD_REQUEST, 'LOOKUP wants u8 flags, u32 n, n keys');
          let { count } = this.index.lookupPrefix(l.keys, false);
          if (l.flags & 1)
            for (let i = 0; i < count; i++)
              if (!this.holdPin(conn, this.index.get(l.keys[i]!)!)) {
                this.counters.limited++;
                count = i; // the pinned prefix is the hit
                break;
              }
          const b = Buffer.allocUnsafe(4);
          b.writeUInt32LE(count);
          return ok(b);
        }
        case Op.GET_LOC: {
          if (p.length !== KEY_BYTES) return fail(Status.BAD_REQUEST, 'want a key');
          const e = this.index.get(keyAt(0));
          if (!e) return fail(Status.NOT_FOUND, 'no such chunk');
          if (!this.holdPin(conn, e)) {
            this.counters.limited++;
            return fail(Status.LIMIT, `connection holds ${conn.pinCount} pins (limit ${this.opts.maxPins})`);
          }
          return ok(u64(e.payload), u64(e.size));
        }
        case Op.PIN:
        case Op.UNPIN: {
          const l = decodeKeyList(p, false);
          if (!l) return fail(Status.BAD_REQUEST, 'want u32 n, n keys');
          let n = 0;
          for (const k of l.keys) {
            if (f.op === Op.UNPIN) n += this.dropPin(conn, k) ? 1 : 0;
            else {
              const e = this.index.get(k);
              if (e) {
                if (!this.holdPin(conn, e)) break;
                n++;
              }
            }
          }
          const b = Buffer.allocUnsafe(4);
          b.writeUInt32LE(n);
          return ok(b);
        }
        case Op.DELETE: {
          if (p.length !== KEY_BYTES) return fail(Status.BAD_REQUEST, 'want a key');
          const k = keyAt(0);
          const mine = this.takeAlloc(conn, k);
          if (mine) {
            this.endWrite(mine, false); // deleting one's own allocation = aborting it (pin and space go back)
            return ok();
          }
          const e = this.index.get(k);
          if (!e) return fail(Status.NOT_FOUND, 'no such chunk');
          if (this.owner.get(e) !== conn.writer) {
            this.counters.forbidden++;
            this.warn('forbidden', `connection ${conn.id} (${conn.socket.remoteAddress}): DELETE of a chunk another writer committed; refused`);
            return fail(Status.FORBIDDEN, 'only the writer of a chunk can delete it');
          }
          this.index.delete(k);
          return ok();
        }
        case Op.STATS:
          return ok(Buffer.from(JSON.stringify(this.stats())));
        case Op.PUT: {
          // The payload went straight into the pool (FrameReader putTarget hook); f.payload is the key.
          const d = f.direct as ReturnType<KvServer['putTarget']> | undefined;
          if (!d) return fail(Status.BAD_REQUEST, 'PUT wants key + bytes');
          if ('status' in d) return fail(d.status, d.msg);
          if (conn.allocs.get(d.entry.key) !== d.entry) return fail(Status.NOT_FOUND, 'allocation ended before the PUT completed');
          this.takeAlloc(conn, d.entry.key);
          return this.endWrite(d.entry, true) ? ok() : fail(Status.NOT_FOUND, 'allocation was deleted before commit');
        }
        case Op.GET: {
          if (p.length !== KEY_BYTES) return fail(Status.BAD_REQUEST, 'want a key');
          const e = this.index.get(keyAt(0));
          if (!e) return fail(Status.NOT_FOUND, 'no such chunk');
          if (conn.socket.destroyed || !conn.socket.writable) return;
          this.index.pin(e); // until the socket has taken the bytes (or the connection is gone: release())
          const token = { e };
          conn.sending.add(token);
          conn.socket.write(encodeHeader(f.op, Status.OK, f.reqId, e.size));
          conn.socket.write(this.pool.view(e.payload, e.size), () => {
            if (conn.sending.delete(token)) this.index.unpin(e);
          });
          return;
        }
        default:
          return fail(Status.BAD_REQUEST, `unknown opcode ${f.op}`);
      }
    } catch (err) {
      log.error(`connection ${conn.id}: op ${f.op}: ${(err as Error).message}`);
      return fail(Status.INTERNAL, (err as Error).message);
    }
  }

  stats() {
    const s = this.index.stats();
    return {
      poolSize: this.opts.poolSize,
      segments: this.allocs.length,
      capacityBytes: this.allocs.reduce((a, x) => a + x.size, 0),
      allocatedBytes: this.allocs.reduce((a, x) => a + x.usedBytes, 0),
      usedBytes: s.usedBytes,
      chunks: s.chunks,
      writing: s.writing,
      pinnedChunks: s.pinnedChunks,
      deadPinned: s.deadPinned,
      evictions: s.evictions,
      freeExtents: this.allocs.reduce((a, x) => a + x.freeExtents, 0),
      connections: this.conns.size,
      unauthenticated: [...this.conns].filter((c) => !c.authed).length,
      /** pins held by connections (LOOKUP/GET_LOC/PIN) */
      pins: [...this.conns].reduce((a, c) => a + c.pinCount, 0),
      quarantined: this.quarantine.size,
      ...this.counters,
    };
  }

  /** Index and allocator agree (and each is self-consistent). */
  checkIntegrity(): void {
    this.index.checkIntegrity();
    for (const a of this.allocs) a.checkIntegrity();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const c of this.conns) c.socket.destroy();
    for (const t of this.quarantine) clearTimeout(t);
    clearInterval(this.sweeper);
    await new Promise<void>((r) => this.server.close(() => r()));
    this.pool.unlinkAll();
    if (this.privateDir)
      try {
        rmdirSync(this.privateDir);
      } catch {
        /* not empty or gone */
      }
  }
}
