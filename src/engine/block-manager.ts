// Paged KV block accounting: plain integers only (free list, ref counts, hash -> block id).
// Only the model runner turns block tables into slot mappings.
//
// Free blocks form an LRU queue (doubly linked over block ids): allocation takes the least recently
// freed block; a freed block keeps its hash until it is reused, so a later request can revive it
// (prefix-cache hit on a free block). Blocks of a sequence are freed in reverse order so that the
// tail of a prefix is evicted before its head.
import { blockHash } from './block-hash.js';

/** Prefix-cache changes, reported as they happen (KV events: src/kv-events/publisher.ts). Must not throw. */
export interface BlockEventSink {
  /** `hashes[i]` names the block of tokens[i*blockSize, (i+1)*blockSize); `parent` is the block before hashes[0]. */
  stored(hashes: string[], parent: string | null, tokens: number[], blockSize: number): void;
  removed(hashes: string[]): void;
}

export class BlockManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  private readonly refCount: Int32Array;
  private readonly hashOf: (string | null)[];
  private readonly hashToBlock = new Map<string, number>();
  // LRU free queue: prev/next links, -1 = none
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly inFree: Uint8Array;
  private head = -1;
  private tail = -1;
  private freeCount = 0;
  // stats (tokens)
  prefixQueries = 0;
  prefixHits = 0;
  /** receives every block registered for prefix reuse and every such block evicted; null = none */
  events: BlockEventSink | null = null;

  constructor(numBlocks: number, blockSize: number, enablePrefixCaching: boolean) {
    if (numBlocks <= 0) throw new Error('BlockManager: numBlocks must be > 0');
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.enablePrefixCaching = enablePrefixCaching;
    this.refCount = new Int32Array(numBlocks);
    this.hashOf = new Array(numBlocks).fill(null);
    this.prev = new Int32Array(numBlocks).fill(-1);
    this.next = new Int32Array(numBlocks).fill(-1);
    this.inFree = new Uint8Array(numBlocks);
    for (let b = 0; b < numBlocks; b++) this.pushFree(b);
  }

  get numFreeBlocks(): number {
    return this.freeCount;
  }
  get usage(): number {
    return 1 - this.freeCount / this.numBlocks;
  }

  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /**
   * Longest cached prefix of `tokens`, in full blocks, leaving at least the last token uncomputed.
   * Does not modify anything. Returns the block ids and hashes of the hit.
   */
  matchPrefix(tokens: readonly number[]): { blockIds: number[]; hashes: string[] } {
    const blockIds: number[] = [];
    const hashes: string[] = [];
    if (!this.enablePrefixCaching) return { blockIds, hashes };
    const maxBlocks = Math.floor((tokens.length - 1) / this.blockSize);
    let parent: string | null = null;
    for (let i = 0; i < maxBlocks; i++) {
      const h = blockHash(parent, tokens, i * this.blockSize, (i + 1) * this.blockSize);
      const b = this.hashToBlock.get(h);
      if (b === undefined) break;
      blockIds.push(b);
      hashes.push(h);
      parent = h;
    }
    return { blockIds, hashes };
  }

  /** Number of blocks that allocating a sequence of numTokens with this cached prefix would take from the free pool. */
  blocksNeeded(numTokens: number, cachedBlockIds: readonly number[]): number {
    let revived = 0;
    for (const b of cachedBlockIds) if (this.refCount[b] === 0) revived++;
    return this.blocksFor(numTokens) - cachedBlockIds.length + revived;
  }

  /**
   * Gives a new sequence its first blocks: the cached prefix (ref++) then fresh blocks up to numTokens.
   * Returns null (and changes nothing) when the pool is short.
   */
  allocate(cached: { blockIds: number[]; hashes: string[] }, numTokens: number): { blockTable: number[]; hashes: string[] } | null {
    if (this.blocksNeeded(numTokens, cached.blockIds) > this.freeCount) return null;
    const table: number[] = [];
    for (const b of cached.blockIds) {
      if (this.refCount[b] === 0) this.unlinkFree(b);
      this.refCount[b]!++;
      table.push(b);
    }
    const want = this.blocksFor(numTokens);
    while (table.length < want) table.push(this.takeFree());
    return { blockTable: table, hashes: cached.hashes.slice() };
  }

  /** Grows blockTable (in place) to hold numTokens. False (and unchanged) if the pool is short. */
  grow(blockTable: number[], numTokens: number): boolean {
    const want = this.blocksFor(numTokens);
    if (want - blockTable.length > this.freeCount) return false;
    while (blockTable.length < want) blockTable.push(this.takeFree());
    return true;
  }

  canGrow(blockTable: readonly number[], numTokens: number): boolean {
    return this.blocksFor(numTokens) - blockTable.length <= this.freeCount;
  }

  /**
   * Registers the full blocks among the first numComputed tokens for prefix reuse.
   * `hashes` (the sequence's list) is extended in place.
   */
  commitFullBlocks(blockTable: readonly number[], hashes: string[], tokens: readonly number[], numComputed: number): void {
    if (!this.enablePrefixCaching) return;
    const full = Math.floor(numComputed / this.blockSize);
    let run: { from: number; hashes: string[] } | null = null; // consecutive newly registered blocks -> one event
    const report = () => {
      if (!run || !this.events) return;
      const bs = this.blockSize;
      this.events.stored(run.hashes, run.from > 0 ? hashes[run.from - 1]! : null, tokens.slice(run.from * bs, (run.from + run.hashes.length) * bs), bs);
    };
    for (let i = hashes.length; i < full; i++) {
      const h = blockHash(i > 0 ? hashes[i - 1]! : null, tokens, i * this.blockSize, (i + 1) * this.blockSize);
      hashes.push(h);
      const b = blockTable[i]!;
      if (this.hashToBlock.has(h) || this.hashOf[b] !== null) {
        // an identical block exists already (keep the first), or this block is registered under another hash
        report();
        run = null;
        continue;
      }
      this.hashOf[b] = h;
      this.hashToBlock.set(h, b);
      if (run) run.hashes.push(h);
      else run = { from: i, hashes: [h] };
    }
    report();
  }

  /** One more holder of blocks already in use (a background KV save); give them back with free(). */
  retain(blockTable: readonly number[]): void {
    for (const b of blockTable) if (this.refCount[b]! <= 0) throw new Error(`BlockManager: retain of free block ${b}`);
    for (const b of blockTable) this.refCount[b]!++;
  }

  /** Releases a sequence's blocks (reverse order, so prefix tails are evicted first). */
  free(blockTable: number[]): void {
    for (let i = blockTable.length - 1; i >= 0; i--) {
      const b = blockTable[i]!;
      if (this.refCount[b]! <= 0) throw new Error(`BlockManager: double free of block ${b}`);
      if (--this.refCount[b]! === 0) this.pushFree(b);
    }
    blockTable.length = 0;
  }

  recordPrefixQuery(queried: number, hit: number): void {
    this.prefixQueries += queried;
    this.prefixHits += hit;
  }

  /** Throws when accounting is broken. `liveTables`: block tables of every sequence holding blocks. */
  checkIntegrity(liveTables: Iterable<readonly number[]>): void {
    const expected = new Int32Array(this.numBlocks);
    for (const t of liveTables) for (const b of t) expected[b]!++;
    let n = 0;
    for (let b = this.head; b !== -1; b = this.next[b]!) {
      if (!this.inFree[b]) throw new Error(`integrity: block ${b} linked but not marked free`);
      if (++n > this.numBlocks) throw new Error('integrity: free list has a cycle');
    }
    if (n !== this.freeCount) throw new Error(`integrity: free list length ${n} != free count ${this.freeCount}`);
    let used = 0;
    for (let b = 0; b < this.numBlocks; b++) {
      if (this.refCount[b] !== expected[b]) throw new Error(`integrity: block ${b} refcount ${this.refCount[b]} != ${expected[b]} holders`);
      if ((this.refCount[b] === 0) !== (this.inFree[b] === 1)) throw new Error(`integrity: block ${b} free flag disagrees with refcount`);
      if (this.refCount[b]! > 0) used++;
      const h = this.hashOf[b];
      if (h !== null && this.hashToBlock.get(h) !== b) throw new Error(`integrity: block ${b} hash not indexed`);
    }
    if (used + this.freeCount !== this.numBlocks) throw new Error(`integrity: used ${used} + free ${this.freeCount} != total ${this.numBlocks}`);
    for (const [h, b] of this.hashToBlock) if (this.hashOf[b] !== h) throw new Error(`integrity: hash index points to block ${b} with another hash`);
  }

  // ---- free queue ----
  private pushFree(b: number): void {
    this.prev[b] = this.tail;
    this.next[b] = -1;
    if (this.tail !== -1) this.next[this.tail] = b;
    else this.head = b;
    this.tail = b;
    this.inFree[b] = 1;
    this.freeCount++;
  }
  private unlinkFree(b: number): void {
    const p = this.prev[b]!, n = this.next[b]!;
    if (p !== -1) this.next[p] = n;
    else this.head = n;
    if (n !== -1) this.prev[n] = p;
    else this.tail = p;
    this.prev[b] = this.next[b] = -1;
    this.inFree[b] = 0;
    this.freeCount--;
  }
  private takeFree(): number {
    const b = this.head;
    if (b === -1) throw new Error('BlockManager: out of blocks');
    this.unlinkFree(b);
    const h = this.hashOf[b];
    if (h !== null) {
      this.hashToBlock.delete(h); // evict the cached content
      this.hashOf[b] = null;
      this.events?.removed([h]);
    }
    this.refCount[b] = 1;
    return b;
  }
}
