// Local CPU tier: chunks in process RAM under a byte budget, LRU eviction (LMCache's local_cpu).
import { ChunkIndex, type IndexEntry } from '../chunk-index.js';
import { type ChunkHandle, type ChunkKey, type KvTier, type Reservation, type TierStats, TierFullError, putByReserve } from './tier.js';

export class CpuTier implements KvTier {
  readonly name = 'local_cpu';
  private readonly index: ChunkIndex<Buffer>;
  /** Pins held through pin()/lookupPrefix(pin) by key, so unpin() finds entries even once deleted. */
  private readonly pins = new Map<ChunkKey, IndexEntry<Buffer>[]>();

  constructor(private readonly capacityBytes: number) {
    this.index = new ChunkIndex<Buffer>(
      (size) => (this.index.usedBytes + size <= this.capacityBytes ? Buffer.allocUnsafeSlow(size) : null),
      () => {}, // RAM goes back to the GC with the buffer
    );
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
    return {
      view: entry.payload,
      commit: async () => {
        this.index.commit(entry);
      },
      abort: async () => this.index.abort(entry),
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
  }
}
