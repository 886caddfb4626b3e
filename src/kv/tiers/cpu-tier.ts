// Local CPU tier: chunks in process RAM under a byte budget, LRU eviction (LMCache's local_cpu).
// Freed chunk buffers are kept for reuse by chunks of the same size (most chunks are full chunks), so
// a tier in steady LRU churn writes into memory that is already faulted in; spare + used <= budget.
import { ChunkIndex, type IndexEntry } from '../chunk-index.js';
import { type ChunkHandle, type ChunkKey, type KvTier, type Reservation, type TierStats, TierFullError, putByReserve } from './tier.js';

export class CpuTier implements KvTier {
  readonly name = 'local_cpu';
  private readonly index: ChunkIndex<Buffer>;
  /** Pins held through pin()/lookupPrefix(pin) by key, so unpin() finds entries even once deleted. */
  private readonly pins = new Map<ChunkKey, IndexEntry<Buffer>[]>();

  /** Freed buffers by length, for reuse. */
  private readonly spare = new Map<number, Buffer[]>();
  private spareBytes = 0;

  constructor(private readonly capacityBytes: number) {
    this.index = new ChunkIndex<Buffer>(
      (size) => this.alloc(size),
      (buf) => this.recycle(buf),
    );
  }

  private alloc(size: number): Buffer | null {
    const reuse = this.spare.get(size)?.pop();
    if (reuse) {
      this.spareBytes -= size;
      return reuse;
    }
    if (this.index.usedBytes + size > this.capacityBytes) return null;
    // Make room by dropping spare buffers of other sizes (their RAM goes back to the GC).
    for (const [len, list] of this.spare) {
      while (list.length && this.index.usedBytes + this.spareBytes + size > this.capacityBytes) {
        list.pop();
        this.spareBytes -= len;
      }
      if (!list.length) this.spare.delete(len);
    }
    return Buffer.allocUnsafeSlow(size);
  }

  private recycle(buf: Buffer): void {
    const list = this.spare.get(buf.length);
    if (list) list.push(buf);
    else this.spare.set(buf.length, [buf]);
    this.spareBytes += buf.length;
  }

  private holdPin(e: IndexEntry<Buffer>): void {
    this.index.pin(e);
    const list = this.pins.get(e.key);
    if (list) list.push(e);
    else this.pins.set(e.key, [e]);
  }

  async lookupPrefix(keys: readonly ChunkKey[], opts: { pin?: boolean } = {}): Promise<number> {
    const { count } = this.index.lookupPrefix(keys, false);
    if (opts.pin) for (let i = 0; i < count; i++) this.holdPin(this.index.get(keys[i]!)!);
    return count;
  }

  async contains(key: ChunkKey): Promise<boolean> {
    return this.index.get(key) !== undefined;
  }

  async reserve(key: ChunkKey, size: number): Promise<Reservation | null> {
    const r = this.index.reserve(key, size);
    if (r.status === 'exists') return null;
    if (r.status === 'full') throw new TierFullError(this.name, size);
    const entry = r.entry;
    this.index.pin(entry); // while being written: a delete() meanwhile must not recycle the buffer
    let open = true;
    const finish = (commit: boolean) => {
      if (!open) return;
      open = false;
      if (commit) this.index.commit(entry);
      else this.index.abort(entry);
      this.index.unpin(entry);
    };
    return {
      view: entry.payload,
      commit: async () => finish(true),
      abort: async () => finish(false),
    };
  }

  put(key: ChunkKey, bytes: Uint8Array): Promise<boolean> {
    return putByReserve(this, key, bytes);
  }

  async get(key: ChunkKey): Promise<ChunkHandle | null> {
    const e = this.index.get(key);
    if (!e) return null;
    this.index.pin(e);
    let released = false;
    return {
      bytes: e.payload,
      valid: () => true,
      release: () => {
        if (released) return;
        released = true;
        this.index.unpin(e);
      },
    };
  }

  async pin(keys: readonly ChunkKey[]): Promise<number> {
    let n = 0;
    for (const k of keys) {
      const e = this.index.get(k);
      if (!e) continue;
      this.holdPin(e);
      n++;
    }
    return n;
  }

  async unpin(keys: readonly ChunkKey[]): Promise<void> {
    for (const k of keys) {
      const list = this.pins.get(k);
      const e = list?.pop();
      if (!e) continue;
      if (list!.length === 0) this.pins.delete(k);
      this.index.unpin(e);
    }
  }

  async delete(key: ChunkKey): Promise<boolean> {
    return this.index.delete(key);
  }

  async stats(): Promise<TierStats> {
    const s = this.index.stats();
    return { chunks: s.chunks, usedBytes: s.usedBytes, capacityBytes: this.capacityBytes, pinnedChunks: s.pinnedChunks, evictions: s.evictions };
  }

  checkIntegrity(): void {
    this.index.checkIntegrity();
  }

  async close(): Promise<void> {
    for (const e of [...this.index.entries()]) this.index.delete(e.key);
    for (const list of this.pins.values()) for (const e of list) this.index.unpin(e);
    this.pins.clear();
    this.spare.clear();
    this.spareBytes = 0;
  }
}
