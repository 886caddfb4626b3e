// What every tier built on a ChunkIndex shares: lookups, pins held by key (so unpin() finds entries
// even once deleted), put through reserve, delete, stats, integrity. Subclasses own the payloads: get,
// reserve, close.
import type { ChunkIndex, IndexEntry } from '../chunk-index.js';
import { putByReserve, TierFullError, type ChunkHandle, type ChunkKey, type KvTier, type Reservation, type TierStats } from './tier.js';

export abstract class IndexedTier<P> implements KvTier {
  abstract readonly name: string;
  /** Assigned by the subclass constructor (its allocator callbacks refer to the subclass). */
  protected index!: ChunkIndex<P>;
  protected readonly pins = new Map<ChunkKey, IndexEntry<P>[]>();

  constructor(protected readonly capacityBytes: number) {}

  abstract get(key: ChunkKey): Promise<ChunkHandle | null>;
  abstract reserve(key: ChunkKey, size: number): Promise<Reservation | null>;
  abstract close(): Promise<void>;

  put(key: ChunkKey, bytes: Uint8Array): Promise<boolean> {
    return putByReserve(this, key, bytes);
  }

  /**
   * Reserves a new entry, pinned while it is written (a delete() meanwhile must not free its payload).
   * finish(commit) commits or aborts it, once. Null when the key exists; TierFullError when nothing fits.
   */
  protected beginWrite(key: ChunkKey, size: number): { entry: IndexEntry<P>; finish: (commit: boolean) => void } | null {
    const r = this.index.reserve(key, size);
    if (r.status === 'exists') return null;
    if (r.status === 'full') throw new TierFullError(this.name, size);
    const entry = r.entry;
    this.index.pin(entry);
    let open = true;
    const finish = (commit: boolean) => {
      if (!open) return;
      open = false;
      if (commit) this.index.commit(entry);
      else this.index.abort(entry);
      this.index.unpin(entry);
    };
    return { entry, finish };
  }

  protected holdPin(e: IndexEntry<P>): void {
    this.index.pin(e);
    const list = this.pins.get(e.key);
    if (list) list.push(e);
    else this.pins.set(e.key, [e]);
  }

  /** Drops every pin taken through pin()/lookupPrefix(pin). */
  protected releasePins(): void {
    for (const list of this.pins.values()) for (const e of list) this.index.unpin(e);
    this.pins.clear();
  }

  /** A handle on a committed entry's bytes, pinned until released. */
  protected pinnedHandle(e: IndexEntry<P>, bytes: Uint8Array): ChunkHandle {
    let released = false;
    return {
      bytes,
      valid: () => true,
      release: () => {
        if (released) return;
        released = true;
        this.index.unpin(e);
      },
    };
  }

  async lookupPrefix(keys: readonly ChunkKey[], opts: { pin?: boolean } = {}): Promise<number> {
    const { count } = this.index.lookupPrefix(keys, false);
    if (opts.pin) for (let i = 0; i < count; i++) this.holdPin(this.index.get(keys[i]!)!);
    return count;
  }

  async contains(key: ChunkKey): Promise<boolean> {
    return this.index.get(key) !== undefined;
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
}
