// The kvaware policy's index: which engine holds which prefix block, fed by the engines' KV events
// (src/kv-events/wire.ts). Keyed by the router's own chained block keys (block-keys.ts chainKeys) so a
// lookup needs only the request's tokens: a BlockStored event's token_ids are re-hashed from its
// parent's key. For pdserve engines that key equals the engine's hash (one chain hash); for engines with
// another hash function (vLLM's) the mapping engine hash -> key makes their events usable too. A store
// whose parent the index never saw (events lost) falls back to the engine's hash as the key.
// Bounded: at most maxBlocksPerEngine blocks per engine (oldest forgotten first).
import { chainHash } from '../../util/chain-hash.js';
import type { KvEvent } from '../../kv-events/wire.js';

// 65,536 blocks of 16 tokens = 1M tokens, more than one GPU's KV cache holds; about 16 MB per engine.
export const DEFAULT_MAX_BLOCKS_PER_ENGINE = 65_536;

interface EngineBlocks {
  byEngineHash: Map<string, string>; // engine's block hash -> key; insertion order = age
  keys: Map<string, number>; // key -> number of engine hashes naming it
}

export interface KvIndexCounters {
  stored: number; // blocks added
  removed: number; // blocks removed by BlockRemoved
  cleared: number; // AllBlocksCleared events and engine resets
  orphans: number; // stored blocks whose parent was unknown (keyed by the engine's hash)
  evicted: number; // blocks forgotten to stay under the bound
}

export class KvIndex {
  private readonly engines = new Map<string, EngineBlocks>();
  /** the engines' block size, from their BlockStored events (the size their hashes are over) */
  blockSize: number | null = null;
  readonly counters: KvIndexCounters = { stored: 0, removed: 0, cleared: 0, orphans: 0, evicted: 0 };

  constructor(readonly maxBlocksPerEngine = DEFAULT_MAX_BLOCKS_PER_ENGINE) {}

  private of(origin: string): EngineBlocks {
    let e = this.engines.get(origin);
    if (!e) this.engines.set(origin, (e = { byEngineHash: new Map(), keys: new Map() }));
    return e;
  }

  apply(origin: string, events: readonly KvEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'AllBlocksCleared') this.clearEngine(origin);
      else if (ev.type === 'BlockRemoved') for (const h of ev.blockHashes) this.remove(origin, h);
      else this.store(origin, ev);
    }
  }

  private store(origin: string, ev: Extract<KvEvent, { type: 'BlockStored' }>): void {
    const e = this.of(origin);
    this.blockSize ??= ev.blockSize;
    const bs = ev.blockSize;
    const rehash = ev.tokenIds.length === ev.blockHashes.length * bs && bs === this.blockSize;
    let parentKey: string | null = ev.parentBlockHash === null ? null : e.byEngineHash.get(ev.parentBlockHash) ?? null;
    let known = ev.parentBlockHash === null || e.byEngineHash.has(ev.parentBlockHash);
    for (let i = 0; i < ev.blockHashes.length; i++) {
      const h = ev.blockHashes[i]!;
      let key: string;
      if (rehash && known) key = chainHash(parentKey ? Buffer.from(parentKey, 'hex') : null, ev.tokenIds.slice(i * bs, (i + 1) * bs)).toString('hex');
      else {
        key = h;
        this.counters.orphans++;
        known = false;
      }
      parentKey = key;
      if (e.byEngineHash.has(h)) this.remove(origin, h, false);
      e.byEngineHash.set(h, key);
      e.keys.set(key, (e.keys.get(key) ?? 0) + 1);
      this.counters.stored++;
    }
    while (e.byEngineHash.size > this.maxBlocksPerEngine) {
      this.remove(origin, e.byEngineHash.keys().next().value!, false);
      this.counters.evicted++;
    }
  }

  private remove(origin: string, engineHash: string, count = true): void {
    const e = this.engines.get(origin);
    const key = e?.byEngineHash.get(engineHash);
    if (!e || key === undefined) return;
    e.byEngineHash.delete(engineHash);
    const n = (e.keys.get(key) ?? 1) - 1;
    if (n > 0) e.keys.set(key, n);
    else e.keys.delete(key);
    if (count) this.counters.removed++;
  }

  /** Forgets everything about an engine (AllBlocksCleared, ejection, restart, removal). */
  clearEngine(origin: string): void {
    if (this.engines.delete(origin)) this.counters.cleared++;
  }

  /** Engines the index knows anything about. */
  origins(): string[] {
    return [...this.engines.keys()];
  }

  /** Longest prefix of `keys` (block-keys.ts chainKeys) that `origin` holds, in blocks. */
  matched(origin: string, keys: readonly string[]): number {
    const e = this.engines.get(origin);
    if (!e) return 0;
    let n = 0;
    while (n < keys.length && e.keys.has(keys[n]!)) n++;
    return n;
  }

  blocks(origin: string): number {
    return this.engines.get(origin)?.byEngineHash.size ?? 0;
  }
}
