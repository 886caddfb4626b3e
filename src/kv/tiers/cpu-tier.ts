// Local CPU tier: chunks in process RAM under a byte budget, LRU eviction (LMCache's local_cpu).
// Freed chunk buffers are kept for reuse by chunks of the same size (most chunks are full chunks), so
// a tier in steady LRU churn writes into memory that is already faulted in; spare + used <= budget.
import { ChunkIndex } from '../chunk-index.js';
import { type ChunkHandle, type ChunkKey, type Reservation } from './tier.js';
import { IndexedTier } from './indexed-tier.js';

export class CpuTier extends IndexedTier<Buffer> {
  readonly name = 'local_cpu';

  /** Freed buffers by length, for reuse. */
  private readonly spare = new Map<number, Buffer[]>();
  private spareBytes = 0;

  constructor(capacityBytes: number) {
    super(capacityBytes);
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




  async reserve(key: ChunkKey, size: number): Promise<Reservation | null> {
    const w = this.beginWrite(key, size);
    if (!w) return null;
    const { entry, finish } = w;
    return {
      view: entry.payload,
      commit: async () => finish(true),
      abort: async () => finish(false),
    };
  }

  async get(key: ChunkKey): Promise<ChunkHandle | null> {
    const e = this.index.get(key);
    if (!e) return null;
    this.index.pin(e);
    return this.pinnedHandle(e, e.payload);
  }






  async close(): Promise<void> {
    for (const e of [...this.index.entries()]) this.index.delete(e.key);
    this.releasePins();
    this.spare.clear();
    this.spareBytes = 0;
  }
}
