// The bookkeeping every tier shares: key -> entry, write-then-commit, pin counts, LRU eviction,
// deferred free. Storage itself (RAM buffers, pool extents) is the caller's: it passes `alloc` (returns a
// payload or null when there is no room) and `free` (gives a payload's space back).
//
// Entry life: reserve -> (writing) -> commit -> (committed, in LRU) -> evict/delete -> freed
//             reserve -> (writing) -> abort -> freed
// A pinned entry that is deleted (or aborted) becomes `dead`: invisible, freed when pins reach 0.
// Invariant (checkIntegrity): usedBytes = sum of sizes of live + dead-pinned entries.

export interface IndexEntry<P> {
  readonly key: string;
  readonly size: number;
  readonly payload: P;
  committed: boolean;
  pins: number;
  dead: boolean;
}

export type ReserveResult<P> = { status: 'ok'; entry: IndexEntry<P> } | { status: 'exists' } | { status: 'full' };

export class ChunkIndex<P> {
  private readonly byKey = new Map<string, IndexEntry<P>>(); // live entries (writing + committed)
  private readonly lru = new Map<string, IndexEntry<P>>(); // committed entries, least recently used first
  private readonly deadPinned = new Set<IndexEntry<P>>();
  usedBytes = 0;
  evictions = 0;

  constructor(
    private readonly alloc: (size: number, key: string) => P | null,
    private readonly free: (payload: P, size: number) => void,
  ) {}

  /** Space for a new chunk; evicts LRU committed unpinned chunks until `alloc` succeeds. */
  reserve(key: string, size: number): ReserveResult<P> {
    if (this.byKey.has(key)) return { status: 'exists' };
    let payload = this.alloc(size, key);
    while (payload === null) {
      const victim = this.oldestEvictable();
      if (!victim) return { status: 'full' };
      this.remove(victim);
      this.evictions++;
      payload = this.alloc(size, key);
    }
    const entry: IndexEntry<P> = { key, size, payload, committed: false, pins: 0, dead: false };
    this.byKey.set(key, entry);
    this.usedBytes += size;
    return { status: 'ok', entry };
  }

  commit(entry: IndexEntry<P>): boolean {
    if (entry.dead || entry.committed || this.byKey.get(entry.key) !== entry) return false;
    entry.committed = true;
    this.lru.set(entry.key, entry);
    return true;
  }

  /** Drops an uncommitted reservation. */
  abort(entry: IndexEntry<P>): void {
    if (entry.committed || entry.dead) return;
    this.remove(entry);
  }

  /** Committed entry of key (touching its LRU position), or undefined. */
  get(key: string): IndexEntry<P> | undefined {
    const e = this.lru.get(key);
    if (!e) return undefined;
    this.lru.delete(key);
    this.lru.set(key, e);
    return e;
  }

  /** Number of leading keys committed; with pin, pins each of those entries (returned for unpinning). */
  lookupPrefix(keys: readonly string[], pin: boolean): { count: number; pinned: IndexEntry<P>[] } {
    const pinned: IndexEntry<P>[] = [];
    let count = 0;
    for (const k of keys) {
      const e = this.get(k);
      if (!e) break;
      count++;
      if (pin) {
        this.pin(e);
        pinned.push(e);
      }
    }
    return { count, pinned };
  }

  pin(e: IndexEntry<P>): void {
    e.pins++;
  }

  unpin(e: IndexEntry<P>): void {
    if (e.pins <= 0) return;
    e.pins--;
    if (e.pins === 0 && e.dead) {
      this.deadPinned.delete(e);
      this.usedBytes -= e.size;
      this.free(e.payload, e.size);
    }
  }

  /** Hides the key's entry (committed or still being written); its space is freed now or at the last unpin. */
  delete(key: string): boolean {
    const e = this.byKey.get(key);
    if (!e) return false;
    this.remove(e);
    return true;
  }

  private remove(e: IndexEntry<P>): void {
    this.byKey.delete(e.key);
    this.lru.delete(e.key);
    e.dead = true;
    if (e.pins > 0) {
      this.deadPinned.add(e);
      return;
    }
    this.usedBytes -= e.size;
    this.free(e.payload, e.size);
  }

  private oldestEvictable(): IndexEntry<P> | undefined {
    for (const e of this.lru.values()) if (e.pins === 0) return e;
    return undefined;
  }

  stats(): { chunks: number; usedBytes: number; pinnedChunks: number; evictions: number; writing: number; deadPinned: number } {
    let pinnedChunks = 0;
    for (const e of this.lru.values()) if (e.pins > 0) pinnedChunks++;
    return {
      chunks: this.lru.size,
      usedBytes: this.usedBytes,
      pinnedChunks: pinnedChunks + this.deadPinned.size,
      evictions: this.evictions,
      writing: this.byKey.size - this.lru.size,
      deadPinned: this.deadPinned.size,
    };
  }

  /** Throws if the byte accounting is off (run by tests and when idle). */
  checkIntegrity(): void {
    let sum = 0;
    for (const e of this.byKey.values()) sum += e.size;
    for (const e of this.deadPinned) sum += e.size;
    if (sum !== this.usedBytes) throw new Error(`ChunkIndex: usedBytes ${this.usedBytes} != sum of entries ${sum}`);
    for (const e of this.lru.values()) if (!e.committed || this.byKey.get(e.key) !== e) throw new Error('ChunkIndex: lru/byKey mismatch');
  }

  /** Every live entry, for shutdown. */
  entries(): IterableIterator<IndexEntry<P>> {
    return this.byKey.values();
  }
}
