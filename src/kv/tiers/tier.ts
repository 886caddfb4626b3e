// A KV storage tier: chunk key (64 hex chars of chainHash) -> immutable bytes.
// Implementations: cpu-tier.ts (local RAM, LRU), disk-tier.ts (local files), pool-tier.ts (a pdserve
// kv-server: shm-mapped or TCP); indexed-tier.ts is the key index cpu and disk share.
// Every implementation runs the shared suite in testing/conformance.ts.
//
// Contracts common to all tiers:
//  - A chunk becomes visible (lookup/get) only after its writer commits: never half-written.
//  - Committed bytes never change; put/reserve of a key already present answers null ("exists").
//  - pin(keys) keeps chunks from eviction; pins are counted (n pins need n unpins). delete() of a pinned
//    chunk hides it at once and frees its space when the last pin goes (deferred free).
//  - A ChunkHandle from get() holds a pin until release(); its bytes are valid until then.
//  - Eviction (LRU over committed, unpinned chunks) happens inside reserve/put when space runs out;
//    when it cannot make room, reserve/put throw TierFullError.
export type ChunkKey = string; // 64 lowercase hex chars

/**
 * What a tier needs of the device to register its host memory for DMA: page-locks `view` and returns the
 * undo, or null where it does not apply (cpu) or failed (the memory stays pageable: slower, still correct).
 * The engine's KvCacheAccess has this shape; the tiers know nothing else of the engine.
 */
export interface HostMemoryRegistrar {
  registerHost?(view: Uint8Array): (() => void) | null;
}

export interface Reservation {
  /** Write the chunk's bytes here (exactly the reserved size), then commit(). */
  readonly view: Uint8Array;
  /** Makes the chunk visible. The view must not be written afterwards. */
  commit(): Promise<void>;
  /** Drops the reservation (the chunk never becomes visible). */
  abort(): Promise<void>;
}

export interface ChunkHandle {
  readonly bytes: Uint8Array;
  /** false if the pin was lost while held (a remote pool's connection dropped): the bytes may have changed. */
  valid(): boolean;
  /** Ends the read: drops the pin taken by get(). Idempotent. */
  release(): void;
}

export interface TierStats {
  chunks: number; // committed, visible chunks
  usedBytes: number; // bytes held (committed + reserved + deleted-but-pinned)
  capacityBytes: number;
  pinnedChunks: number;
  evictions: number;
}

export interface KvTier {
  readonly name: string;
  /** Number of leading keys present (committed). pin=true pins exactly those (caller unpins them). */
  lookupPrefix(keys: readonly ChunkKey[], opts?: { pin?: boolean }): Promise<number>;
  contains(key: ChunkKey): Promise<boolean>;
  /** Zero-copy write: space for `size` bytes; null if the key is already present or being written. */
  reserve(key: ChunkKey, size: number): Promise<Reservation | null>;
  /** Copying write (reserve + copy + commit). false if the key was already present. */
  put(key: ChunkKey, bytes: Uint8Array): Promise<boolean>;
  /** Pinned read view, or null if absent. */
  get(key: ChunkKey): Promise<ChunkHandle | null>;
  pin(keys: readonly ChunkKey[]): Promise<number>;
  unpin(keys: readonly ChunkKey[]): Promise<void>;
  /** true if the key was present. */
  delete(key: ChunkKey): Promise<boolean>;
  stats(): Promise<TierStats>;
  close(): Promise<void>;
  /** The device this tier's chunks are copied to and from (optional): a tier whose memory the device reads
   * and writes directly (the pool's pages, the cpu tier's buffers) registers it for DMA through `kv`. */
  attachKvCache?(kv: HostMemoryRegistrar): void;
}

export class TierFullError extends Error {
  constructor(tier: string, size: number) {
    super(`${tier}: no room for ${size} bytes (everything left is pinned or being written)`);
    this.name = 'TierFullError';
  }
}

/** Shared helper: reserve + copy + commit. */
export async function putByReserve(tier: KvTier, key: ChunkKey, bytes: Uint8Array): Promise<boolean> {
  const r = await tier.reserve(key, bytes.byteLength);
  if (!r) return false;
  try {
    r.view.set(bytes);
  } catch (e) {
    await r.abort();
    throw e;
  }
  await r.commit();
  return true;
}
