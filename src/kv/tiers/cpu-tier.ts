// Local CPU tier: chunks in process RAM under a byte budget, LRU eviction (LMCache's local_cpu).
// Freed chunk buffers are kept for reuse by chunks of the same size (most chunks are full chunks), so
// a tier in steady LRU churn writes into memory that is already faulted in; spare + used <= budget.
// With a GPU's KV cache attached, each new buffer is page-locked once (direct DMA, no bounce buffers)
// and unlocked when it is dropped or the tier closes.
import { ChunkIndex } from '../chunk-index.js';
import { type ChunkHandle, type ChunkKey, type HostMemoryRegistrar, type Reservation } from './tier.js';
import { IndexedTier } from './indexed-tier.js';

export class CpuTier extends IndexedTier<Buffer> {
  readonly name = 'local_cpu';

  /** Freed buffers by length, for reuse. */
  private readonly spare = new Map<number, Buffer[]>();
  private spareBytes = 0;
  /** The engine's KV cache (attachKvCache) and the undo of each page-locked buffer. */
  private kv: HostMemoryRegistrar | null = null;
  private readonly locked = new Map<Buffer, () => void>();

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
        this.unlock(list.pop()!);
        this.spareBytes -= len;
      }
      if (!list.length) this.spare.delete(len);
    }
    const buf = Buffer.allocUnsafeSlow(size);
    const undo = this.kv?.registerHost?.(buf);
    if (undo) this.locked.set(buf, undo);
    return buf;
  }

  /** New chunk buffers are page-locked for the device of this KV cache (where it has registerHost). */
  attachKvCache(kv: HostMemoryRegistrar): void {
    this.kv = kv;
  }

  private unlock(buf: Buffer): void {
    this.locked.get(buf)?.();
    this.locked.delete(buf);
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
    for (const undo of this.locked.values()) undo();
    this.locked.clear();
  }
}
