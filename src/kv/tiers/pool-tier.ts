// KvTier over a `pdserve kv-server` (remote_url pdkv://host:port).
// shm mode (same host): map the pool file; reserve() hands out a view of the pool pages (ALLOC), the
// caller writes KV straight into them, commit() registers the chunk (COMMIT); get() pins the chunk
// (GET_LOC) and returns a view of its pages. No KV byte crosses the socket.
// tcp mode (other hosts, or when the pool file cannot be mapped): PUT/GET move the bytes.
// Availability: a down or slow server never blocks callers past the request timeout; lookups then
// report 0 hits (a miss, so the engine computes), writes throw. A server that fails authentication
// (kv-client.ts) counts as down. The pool mapped is the one the authenticated session announced: its
// header must carry the session's nonce, and a symlink at the announced path is never followed.
import { PdsError } from '../../util/errors.js';
import { getLogger } from '../../util/logger.js';
import { KvClient, type HelloInfo } from '../server/kv-client.js';
import { PoolSegments } from '../server/pool-segments.js';
import { Op, PAGE_SIZE, POOL_MAGIC, Status, encodeKeyList, keyToBytes, u64 } from '../server/protocol.js';
import { type ChunkHandle, type ChunkKey, type HostMemoryRegistrar, type KvTier, type Reservation, type TierStats, TierFullError, putByReserve } from './tier.js';

const log = getLogger('kv');

export interface PoolTierOptions {
  host: string;
  port: number;
  transport: 'auto' | 'shm' | 'tcp';
  timeoutMs: number;
  backoffMs: number;
  /** The internal secret's key (resolveInternalSecret()?.key); null/absent = none. */
  secret?: Buffer | null;
  /** Owner id of the chunks this tier commits (default random; kv-client.ts). */
  writerId?: Buffer;
}

export class PoolTier implements KvTier {
  readonly name = 'kv_server';
  readonly client: KvClient;
  /** The mapped pool (shm mode) and the nonce of the server instance it belongs to. */
  private pool: PoolSegments | null = null;
  private poolNonce: Buffer | null = null;
  private lastWarn = 0;
  /** Reused TCP staging buffers (a few chunks' worth: no fresh pages per chunk). */
  private readonly spare: Buffer[] = [];
  /** The engine's KV cache (attachKvCache) and the undo of the pool pages' DMA registration. */
  private kv: HostMemoryRegistrar | null = null;
  private unregister: Array<() => void> = [];

  constructor(private readonly opts: PoolTierOptions) {
    this.client = new KvClient({ host: opts.host, port: opts.port, timeoutMs: opts.timeoutMs, backoffMs: opts.backoffMs, secret: opts.secret ?? null, ...(opts.writerId ? { writerId: opts.writerId } : {}) });
    this.client.onConnect = (h) => this.onHello(h);
    this.client.kick(); // connect now, so the first request's lookup does not pay for it
  }

  /** 'shm' | 'tcp' once connected; null before the first connection. */
  get mode(): 'shm' | 'tcp' | null {
    if (!this.client.hello) return null;
    return this.pool ? 'shm' : 'tcp';
  }

  /** Connects now (otherwise the first request does); throws if the server is unreachable. */
  async connect(): Promise<void> {
    await this.client.request(Op.STATS, []);
  }

  /** Registers the mapped pool pages with the engine's device (GPU: direct DMA to and from them). */
  attachKvCache(kv: HostMemoryRegistrar): void {
    this.kv = kv;
    this.registerPool();
  }

  private registerPool(): void {
    this.unregisterPool();
    if (!this.kv?.registerHost || !this.pool) return;
    const t0 = performance.now();
    let bytes = 0;
    for (const m of this.pool.maps) {
      const undo = this.kv.registerHost(m);
      if (!undo) {
        log.warn(`kv-server pool: page-locking ${m.byteLength} bytes for the GPU failed; transfers stage through pinned buffers`);
        break;
      }
      this.unregister.push(undo);
      bytes += m.byteLength;
    }
    if (bytes) log.info(`kv-server pool: ${bytes} bytes page-locked for GPU transfers in ${(performance.now() - t0).toFixed(0)} ms`);
  }

  private unregisterPool(): void {
    for (const undo of this.unregister.splice(0)) undo();
  }

  private onHello(h: HelloInfo): void {
    if (this.poolNonce?.equals(h.nonce)) return;
    this.unregisterPool();
    this.pool = null;
    this.poolNonce = null;
    if (this.opts.transport === 'tcp') return;
    try {
      const segs = new PoolSegments(h.poolFile, h.poolSize, h.segmentSize, false);
      const head = Buffer.from(segs.view(0, PAGE_SIZE));
      if (head.toString('ascii', 0, 8) !== POOL_MAGIC || !head.subarray(8, 24).equals(h.nonce)) throw new Error('pool file belongs to another kv-server');
      this.pool = segs;
      this.poolNonce = Buffer.from(h.nonce);
      if (this.kv?.registerHost) this.registerPool(); // pins (and so maps) every page
      else void segs.prefault(() => this.pool !== segs).catch(() => {});
      log.info(`kv-server ${this.opts.host}:${this.opts.port}: shared-memory pool ${h.poolFile} mapped (${h.poolSize} bytes)`);
    } catch (e) {
      const why = `cannot map pool file ${h.poolFile}: ${(e as Error).message}`;
      if (this.opts.transport === 'shm') {
        this.client.close();
        throw new PdsError('PDS_ERR_UNAVAILABLE', `kv-server ${this.opts.host}:${this.opts.port}: transport shm: ${why}`);
      }
      log.info(`kv-server ${this.opts.host}:${this.opts.port}: ${why}; using TCP transfers`);
    }
  }

  private stage(size: number): Buffer {
    const i = this.spare.findIndex((b) => b.length === size);
    return i >= 0 ? this.spare.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(size);
  }

  private unstage(b: Buffer): void {
    if (this.spare.length < 4) this.spare.push(b);
  }

  private warnDown(e: unknown): void {
    const now = Date.now();
    if (now - this.lastWarn < 10_000) return;
    this.lastWarn = now;
    log.warn(`kv-server lookups count as misses: ${(e as Error).message}`);
  }

  private async call(op: Op, ...parts: Uint8Array[]): Promise<{ status: Status; payload: Buffer }> {
    return this.client.request(op, parts);
  }

  private failure(op: string, status: Status, payload: Buffer): Error {
    return new PdsError('PDS_ERR_UPSTREAM', `kv-server ${op}: ${Status[status]}: ${payload.toString('utf8')}`);
  }

  /** While the server is down, reads and writes fail at once (a reconnect runs in the background)
   *  instead of waiting on a connect attempt to a host that may not answer. */
  private failFastIfDown(): void {
    if (!this.client.down) return;
    this.client.kick();
    throw new PdsError('PDS_ERR_UNAVAILABLE', `kv-server ${this.opts.host}:${this.opts.port} is down (reconnecting in the background)`);
  }

  async lookupPrefix(keys: readonly ChunkKey[], opts: { pin?: boolean } = {}): Promise<number> {
    if (!keys.length) return 0;
    try {
      this.failFastIfDown();
      const r = await this.call(Op.LOOKUP, encodeKeyList(keys, opts.pin ? 1 : 0));
      if (r.status !== Status.OK) throw this.failure('LOOKUP', r.status, r.payload);
      return r.payload.readUInt32LE(0);
    } catch (e) {
      this.warnDown(e);
      return 0;
    }
  }

  async contains(key: ChunkKey): Promise<boolean> {
    return (await this.lookupPrefix([key])) === 1;
  }

  /** TCP mode moves a chunk in one frame: refuse (without losing the connection) what the server would. */
  private checkFrame(size: number): void {
    const max = this.client.hello?.maxPayload;
    if (this.mode === 'tcp' && max !== undefined && size + 32 > max)
      throw new PdsError('PDS_ERR_BAD_REQUEST', `chunk of ${size} bytes exceeds the kv-server's max frame payload ${max} (its --max-frame)`);
  }

  async reserve(key: ChunkKey, size: number): Promise<Reservation | null> {
    this.failFastIfDown();
    this.checkFrame(size);
    const r = await this.call(Op.ALLOC, keyToBytes(key), u64(size));
    if (r.status === Status.EXISTS) return null;
    if (r.status === Status.FULL || r.status === Status.LIMIT) throw new TierFullError(this.name, size);
    if (r.status !== Status.OK) throw this.failure('ALLOC', r.status, r.payload);
    const off = Number(r.payload.readBigUInt64LE(0));
    const pool = this.pool;
    const keyBytes = keyToBytes(key);
    const epoch = this.client.epoch;
    // tcp: a staging buffer, taken on first use and given back once the server has all its bytes
    let staged: Buffer | null = null;
    const tier = this;
    return {
      get view(): Uint8Array {
        return pool ? pool.view(off, size) : (staged ??= tier.stage(size));
      },
      commit: async () => {
        if (this.client.epoch !== epoch) throw new PdsError('PDS_ERR_UNAVAILABLE', 'kv-server connection was reset before commit; the chunk was dropped');
        const c = pool ? await this.call(Op.COMMIT, keyBytes) : await this.call(Op.PUT, keyBytes, staged ?? this.stage(size));
        if (staged) this.unstage(staged); // the reply means the socket has sent every byte
        staged = null;
        if (c.status !== Status.OK) throw this.failure(pool ? 'COMMIT' : 'PUT', c.status, c.payload);
      },
      abort: async () => {
        if (staged) this.unstage(staged);
        staged = null;
        if (this.client.epoch !== epoch) return;
        await this.call(Op.ABORT, keyBytes).catch(() => {});
      },
    };
  }

  async put(key: ChunkKey, bytes: Uint8Array): Promise<boolean> {
    if (this.mode === null) await this.connect();
    if (this.mode !== 'tcp') return putByReserve(this, key, bytes);
    this.checkFrame(bytes.byteLength);
    const r = await this.call(Op.PUT, keyToBytes(key), bytes);
    if (r.status === Status.EXISTS) return false;
    if (r.status === Status.FULL || r.status === Status.LIMIT) throw new TierFullError(this.name, bytes.byteLength);
    if (r.status !== Status.OK) throw this.failure('PUT', r.status, r.payload);
    return true;
  }

  async get(key: ChunkKey): Promise<ChunkHandle | null> {
    const kb = keyToBytes(key);
    if (this.mode === null) await this.connect().catch(() => {});
    if (this.mode === 'shm') {
      const pool = this.pool!;
      const r = await this.call(Op.GET_LOC, kb);
      if (r.status === Status.NOT_FOUND) return null;
      if (r.status !== Status.OK) throw this.failure('GET_LOC', r.status, r.payload);
      const off = Number(r.payload.readBigUInt64LE(0));
      const size = Number(r.payload.readBigUInt64LE(8));
      const epoch = this.client.epoch;
      let released = false;
      return {
        bytes: pool.view(off, size),
        valid: () => this.client.epoch === epoch && this.client.connected,
        release: () => {
          if (released) return;
          released = true;
          if (this.client.epoch === epoch) void this.call(Op.UNPIN, encodeKeyList([key])).catch(() => {});
        },
      };
    }
    const r = await this.call(Op.GET, kb);
    if (r.status === Status.NOT_FOUND) return null;
    if (r.status !== Status.OK) throw this.failure('GET', r.status, r.payload);
    return { bytes: r.payload, valid: () => true, release: () => {} };
  }

  async pin(keys: readonly ChunkKey[]): Promise<number> {
    const r = await this.call(Op.PIN, encodeKeyList(keys));
    if (r.status !== Status.OK) throw this.failure('PIN', r.status, r.payload);
    return r.payload.readUInt32LE(0);
  }

  async unpin(keys: readonly ChunkKey[]): Promise<void> {
    if (!keys.length) return;
    await this.call(Op.UNPIN, encodeKeyList(keys)).catch(() => {}); // a lost connection released them already
  }

  /** true if deleted; false if absent. Throws PDS_ERR_FORBIDDEN for a chunk another writer committed. */
  async delete(key: ChunkKey): Promise<boolean> {
    const r = await this.call(Op.DELETE, keyToBytes(key));
    if (r.status === Status.FORBIDDEN) throw new PdsError('PDS_ERR_FORBIDDEN', `kv-server DELETE: ${r.payload.toString('utf8')}`);
    return r.status === Status.OK;
  }

  async stats(): Promise<TierStats> {
    const r = await this.call(Op.STATS);
    if (r.status !== Status.OK) throw this.failure('STATS', r.status, r.payload);
    const s = JSON.parse(r.payload.toString('utf8'));
    return { chunks: s.chunks, usedBytes: s.usedBytes, capacityBytes: s.capacityBytes, pinnedChunks: s.pinnedChunks, evictions: s.evictions };
  }

  async close(): Promise<void> {
    this.spare.length = 0;
    this.unregisterPool();
    this.client.close();
  }
}
