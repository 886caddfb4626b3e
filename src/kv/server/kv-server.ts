// `pdserve kv-server`: a shared-memory KV pool (files in /dev/shm) plus a metadata server over TCP
// (protocol.ts). Same-host clients map the pool file and copy KV straight in/out of its pages; other
// hosts move bytes with PUT/GET (a PUT's bytes stream straight into pool pages). Bookkeeping: ChunkIndex
// (commit, pins, LRU, deferred free) over one ExtentAllocator per pool segment (pool-segments.ts); per
// connection: its uncommitted allocations and its pins, released when it closes. A bad frame costs only
// the connection that sent it.
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { getLogger } from '../../util/logger.js';
import { ChunkIndex, type IndexEntry } from '../chunk-index.js';
import { ExtentAllocator } from './extent-allocator.js';
import { MAX_SEGMENT_BYTES, PoolSegments, segmentLengths } from './pool-segments.js';
import {
  DEFAULT_MAX_PAYLOAD, FrameReader, KEY_BYTES, Op, PAGE_SIZE, POOL_MAGIC, Status, type Frame,
  decodeKeyList, encodeHeader, isReadError, u64,
} from './protocol.js';

const log = getLogger('kv-server');
export const MAX_POOL_BYTES = 2 ** 40;

export interface KvServerOptions {
  host: string;
  port: number; // 0 = any free port
  poolSize: number; // bytes, including the header page
  poolFile: string; // segment 0; segment i is `${poolFile}.${i}`
  /** Bytes per pool file (default and maximum 4 GiB); the largest chunk must fit one segment. */
  segmentSize?: number;
  maxPayload?: number;
  /** A closed connection's uncommitted allocations are freed after this long (ms), so a late write by a
   *  client that lost its connection mid-gather never lands in a page given to someone else. */
  allocQuarantineMs?: number;
  /** Touch every page at start so first writes do not page-fault. */
  prefault?: boolean;
  quiet?: boolean;
}

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
  readonly allocs = new Map<string, IndexEntry<number>>();
  readonly pins = new Map<string, IndexEntry<number>[]>();
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
  private readonly nonce = randomBytes(16);
  private readonly quarantine = new Set<NodeJS.Timeout>();
  private nextConnId = 1;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    private readonly pool: PoolSegments,
    readonly opts: Required<KvServerOptions>,
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
  }

  /** The largest extent any segment could hold. */
  private get maxChunk(): number {
    return Math.max(...this.allocs.map((a) => a.size));
  }

  static async start(o: KvServerOptions): Promise<KvServer> {
    const opts: Required<KvServerOptions> = { maxPayload: DEFAULT_MAX_PAYLOAD, segmentSize: MAX_SEGMENT_BYTES, allocQuarantineMs: 2000, prefault: false, quiet: false, ...o };
    opts.poolSize = Math.floor(opts.poolSize / PAGE_SIZE) * PAGE_SIZE;
    if (opts.poolSize < 2 * PAGE_SIZE) throw new RangeError(`pool size must be at least ${2 * PAGE_SIZE} bytes`);
    if (opts.poolSize > MAX_POOL_BYTES) throw new RangeError(`pool size above 1T is not supported`);
    segmentLengths(opts.poolSize, opts.segmentSize); // validates segmentSize
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
    try {
      checkRoom(opts.poolFile, opts.poolSize);
      pool = new PoolSegments(opts.poolFile, opts.poolSize, opts.segmentSize, true);
    } catch (e) {
      server.close();
      throw e;
    }
    const s = new KvServer(server, pool, opts);
    s.writePoolHeader();
    if (opts.prefault) for (const m of pool.maps) for (let off = 0; off < m.byteLength; off += 2 ** 26) m.fill(0, off === 0 && m === pool.maps[0] ? PAGE_SIZE : off, Math.min(m.byteLength, off + 2 ** 26));
    server.on('connection', (sock) => s.accept(sock));
    if (!opts.quiet)
      log.info(
        `pdserve kv-server listening on ${opts.host}:${s.port}, pool size ${(opts.poolSize / 2 ** 30).toFixed(2)} GiB ` +
          `(${opts.poolSize} bytes), pool file ${opts.poolFile}${pool.maps.length > 1 ? ` (+${pool.maps.length - 1} more segments ${opts.poolFile}.N)` : ''}, page size ${PAGE_SIZE}, max frame payload ${opts.maxPayload} bytes`,
      );
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

  private accept(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    socket.setNoDelay(true);
    const conn: Conn = new Conn(
      this.nextConnId++,
      socket,
      new FrameReader(this.opts.maxPayload, {
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
      for (const f of conn.reader.push(chunk)) {
        if (isReadError(f)) {
          const status = f.kind === 'too_large' ? Status.TOO_LARGE : Status.BAD_REQUEST;
          const msg = f.kind === 'too_large' ? `frame payload ${f.length} > max ${this.opts.maxPayload}` : `${f.kind.replace('_', ' ')}`;
          log.warn(`connection ${conn.id}: ${msg}; closing it`);
          this.reply(conn, f.op, f.reqId, status, Buffer.from(msg));
          socket.end();
          setTimeout(() => socket.destroy(), 1000).unref();
          return;
        }
        this.handle(conn, f);
      }
    });
    socket.on('error', () => {}); // 'close' follows and cleans up
    socket.on('close', () => this.release(conn));
  }

  /** A closed connection's uncommitted allocations and pins go back. */
  private release(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    const allocs = [...conn.allocs.values()];
    conn.allocs.clear();
    if (allocs.length) {
      const t = setTimeout(() => {
        this.quarantine.delete(t);
        for (const e of allocs) this.endWrite(e, false);
      }, this.opts.allocQuarantineMs);
      this.quarantine.add(t);
    }
    for (const list of conn.pins.values()) for (const e of list) this.index.unpin(e);
    conn.pins.clear();
  }

  private reply(conn: Conn, op: number, reqId: number, status: Status, ...parts: Uint8Array[]): void {
    const len = parts.reduce((a, p) => a + p.byteLength, 0);
    if (conn.socket.destroyed || !conn.socket.writable) return;
    conn.socket.write(encodeHeader(op, status, reqId, len));
    for (const p of parts) conn.socket.write(p);
  }

  /** A new allocation for this connection's writer. The writer holds a pin until commit/abort, so a
   *  DELETE meanwhile hides the key but never frees pages still being written. */
  private beginWrite(conn: Conn, key: string, size: number): IndexEntry<number> | [Status, string] {
    if (size <= 0 || size > this.maxChunk) return [Status.TOO_LARGE, `size ${size} does not fit a pool segment`];
    const r = this.index.reserve(key, size);
    if (r.status === 'exists') return [Status.EXISTS, 'chunk exists or is being written'];
    if (r.status === 'full') return [Status.FULL, 'pool full: everything left is pinned or being written'];
    this.index.pin(r.entry);
    conn.allocs.set(key, r.entry);
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
    let e = conn.allocs.get(key);
    if (e && e.size !== size) return { status: Status.BAD_REQUEST, msg: `PUT of ${size} bytes into an allocation of ${e.size}` };
    if (!e) {
      const r = this.beginWrite(conn, key, size);
      if (Array.isArray(r)) return { status: r[0], msg: r[1] };
      e = r;
    }
    return { view: this.pool.view(e.payload, size), entry: e };
  }

  private holdPin(conn: Conn, e: IndexEntry<number>): void {
    this.index.pin(e);
    const list = conn.pins.get(e.key);
    if (list) list.push(e);
    else conn.pins.set(e.key, [e]);
  }

  private dropPin(conn: Conn, key: string): boolean {
    const list = conn.pins.get(key);
    const e = list?.pop();
    if (!e) return false;
    if (list!.length === 0) conn.pins.delete(key);
    this.index.unpin(e);
    return true;
  }

  private handle(conn: Conn, f: Frame): void {
    const p = f.payload;
    const ok = (...parts: Uint8Array[]) => this.reply(conn, f.op, f.reqId, Status.OK, ...parts);
    const fail = (s: Status, msg: string) => this.reply(conn, f.op, f.reqId, s, Buffer.from(msg));
    const keyAt = (off: number) => p.toString('hex', off, off + KEY_BYTES);
    try {
      switch (f.op) {
        case Op.HELLO: {
          const path = Buffer.from(this.opts.poolFile, 'utf8');
          const b = Buffer.allocUnsafe(8 + 4 + 4 + 16 + 2);
          b.writeBigUInt64LE(BigInt(this.opts.poolSize), 0);
          b.writeUInt32LE(PAGE_SIZE, 8);
          b.writeUInt32LE(this.opts.maxPayload, 12);
          this.nonce.copy(b, 16);
          b.writeUInt16LE(path.length, 32);
          return ok(b, path, u64(this.opts.segmentSize));
        }
        case Op.ALLOC: {
          if (p.length !== KEY_BYTES + 8) return fail(Status.BAD_REQUEST, 'ALLOC wants key + u64 size');
          const r = this.beginWrite(conn, keyAt(0), Number(p.readBigUInt64LE(KEY_BYTES)));
          return Array.isArray(r) ? fail(r[0], r[1]) : ok(u64(r.payload));
        }
        case Op.COMMIT:
        case Op.ABORT: {
          if (p.length !== KEY_BYTES) return fail(Status.BAD_REQUEST, 'want a key');
          const e = conn.allocs.get(keyAt(0));
          if (!e) return fail(Status.NOT_FOUND, 'no uncommitted allocation of this key on this connection');
          conn.allocs.delete(e.key);
          return this.endWrite(e, f.op === Op.COMMIT) ? ok() : fail(Status.NOT_FOUND, 'allocation was deleted before commit');
        }
        case Op.LOOKUP: {
          const l = decodeKeyList(p, true);
          if (!l) return fail(Status.BAD_REQUEST, 'LOOKUP wants u8 flags, u32 n, n keys');
          const { count } = this.index.lookupPrefix(l.keys, false);
          if (l.flags & 1) for (let i = 0; i < count; i++) this.holdPin(conn, this.index.get(l.keys[i]!)!);
          const b = Buffer.allocUnsafe(4);
          b.writeUInt32LE(count);
          return ok(b);
        }
        case Op.GET_LOC: {
          if (p.length !== KEY_BYTES) return fail(Status.BAD_REQUEST, 'want a key');
          const e = this.index.get(keyAt(0));
          if (!e) return fail(Status.NOT_FOUND, 'no such chunk');
          this.holdPin(conn, e);
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
                this.holdPin(conn, e);
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
          return this.index.delete(keyAt(0)) ? ok() : fail(Status.NOT_FOUND, 'no such chunk');
        }
        case Op.STATS:
          return ok(Buffer.from(JSON.stringify(this.stats())));
        case Op.PUT: {
          // The payload went straight into the pool (FrameReader putTarget hook); f.payload is the key.
          const d = f.direct as ReturnType<KvServer['putTarget']> | undefined;
          if (!d) return fail(Status.BAD_REQUEST, 'PUT wants key + bytes');
          if ('status' in d) return fail(d.status, d.msg);
          conn.allocs.delete(d.entry.key);
          return this.endWrite(d.entry, true) ? ok() : fail(Status.NOT_FOUND, 'allocation was deleted before commit');
        }
        case Op.GET: {
          if (p.length !== KEY_BYTES) return fail(Status.BAD_REQUEST, 'want a key');
          const e = this.index.get(keyAt(0));
          if (!e) return fail(Status.NOT_FOUND, 'no such chunk');
          if (conn.socket.destroyed) return;
          this.index.pin(e); // until the socket has taken the bytes
          conn.socket.write(encodeHeader(f.op, Status.OK, f.reqId, e.size));
          conn.socket.write(this.pool.view(e.payload, e.size), () => this.index.unpin(e));
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
    await new Promise<void>((r) => this.server.close(() => r()));
    this.pool.unlinkAll();
  }
}
