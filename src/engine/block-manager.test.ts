// BlockManager: allocation and growth, ref counts, prefix-cache hits through chained block hashes, the LRU
// free queue (a freed block keeps its content until reused), and checkIntegrity catching broken accounting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockManager } from './block-manager.js';
import { blockHash } from './block-hash.js';

const bs = 4;
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** Allocates a fresh sequence of `tokens` with whatever prefix the cache holds; asserts it fits. */
function admit(bm: BlockManager, tokens: number[]) {
  const cached = bm.matchPrefix(tokens);
  const a = bm.allocate(cached, tokens.length);
  assert.ok(a, 'allocation fits');
  return { ...a, cachedBlocks: cached.blockIds.length };
}

test('allocate takes ceil(tokens / blockSize) distinct blocks; free gives them all back', () => {
  const bm = new BlockManager(8, bs, false);
  assert.equal(bm.blocksFor(0), 0);
  assert.equal(bm.blocksFor(4), 1);
  assert.equal(bm.blocksFor(5), 2);
  const a = admit(bm, range(9));
  assert.equal(a.blockTable.length, 3);
  assert.equal(new Set(a.blockTable).size, 3);
  assert.equal(bm.numFreeBlocks, 5);
  assert.equal(bm.usage, 3 / 8);
  bm.checkIntegrity([a.blockTable]);
  const table = a.blockTable;
  bm.free(table);
  assert.deepEqual(table, [], 'free empties the table it was given');
  assert.equal(bm.numFreeBlocks, 8);
  bm.checkIntegrity([]);
});

test('allocation and growth are all-or-nothing when the pool is short', () => {
  const bm = new BlockManager(4, bs, false);
  const a = admit(bm, range(12)); // 3 blocks
  assert.equal(bm.allocate({ blockIds: [], hashes: [] }, 8), null, 'needs 2, 1 free');
  assert.equal(bm.numFreeBlocks, 1, 'a failed allocate takes nothing');
  const t = a.blockTable;
  assert.equal(bm.canGrow(t, 16), true);
  assert.equal(bm.canGrow(t, 17), false);
  assert.equal(bm.grow(t, 17), false);
  assert.equal(t.length, 3, 'a failed grow leaves the table unchanged');
  assert.equal(bm.grow(t, 13), true);
  assert.equal(t.length, 4);
  assert.equal(bm.grow(t, 16), true, 'growing within the last block takes nothing');
  assert.equal(bm.numFreeBlocks, 0);
  bm.checkIntegrity([t]);
  assert.throws(() => new BlockManager(0, bs, false), /numBlocks must be > 0/);
});

test('prefix cache: a later prompt with the same full blocks reuses them (ref counts shared)', () => {
  const bm = new BlockManager(16, bs, true);
  const prompt = range(10, 100); // 2 full blocks + 2 tokens
  const a = admit(bm, prompt);
  assert.equal(a.cachedBlocks, 0);
  bm.commitFullBlocks(a.blockTable, a.hashes, prompt, prompt.length);
  assert.equal(a.hashes.length, 2, 'only full blocks are registered');
  // the chained hash: block 1's key depends on block 0's
  assert.equal(a.hashes[0], blockHash(null, prompt, 0, 4));
  assert.equal(a.hashes[1], blockHash(a.hashes[0]!, prompt, 4, 8));

  const other = [...prompt.slice(0, 8), 7, 7, 7];
  const hit = bm.matchPrefix(other);
  assert.deepEqual(hit.blockIds, a.blockTable.slice(0, 2));
  assert.deepEqual(hit.hashes, a.hashes);
  const before = bm.numFreeBlocks;
  assert.equal(bm.blocksNeeded(other.length, hit.blockIds), 1, 'shared blocks in use cost nothing');
  const b = bm.allocate(hit, other.length)!;
  assert.deepEqual(b.blockTable.slice(0, 2), a.blockTable.slice(0, 2));
  assert.notEqual(b.blockTable[2], a.blockTable[2]);
  assert.equal(bm.numFreeBlocks, before - 1);
  bm.checkIntegrity([a.blockTable, b.blockTable]);
  // freeing one holder keeps shared blocks in use
  bm.free(a.blockTable);
  bm.checkIntegrity([b.blockTable]);
  assert.equal(bm.numFreeBlocks, 16 - 3);
});

test('prefix match is a chain: same tokens after a different first block do not hit', () => {
  const bm = new BlockManager(16, bs, true);
  const p = range(9, 1);
  const a = admit(bm, p);
  bm.commitFullBlocks(a.blockTable, a.hashes, p, 8);
  const shifted = [99, ...p.slice(1)]; // block 1 holds the same tokens, block 0 differs
  assert.deepEqual(bm.matchPrefix(shifted).blockIds, []);
  // the hit always leaves the last token to compute: an 8-token prompt of two cached blocks hits one
  assert.equal(bm.matchPrefix(p.slice(0, 8)).blockIds.length, 1);
  assert.equal(bm.matchPrefix(p).blockIds.length, 2);
  // disabled prefix caching: never a hit, nothing registered
  const off = new BlockManager(16, bs, false);
  const c = admit(off, p);
  off.commitFullBlocks(c.blockTable, c.hashes, p, 8);
  assert.deepEqual(c.hashes, []);
  assert.deepEqual(off.matchPrefix(p).blockIds, []);
});

test('a freed block keeps its content until reused: revival is a hit; reuse evicts it, tail first', () => {
  const bm = new BlockManager(4, bs, true);
  const p = range(9, 50); // 3 blocks, 2 full
  const a = admit(bm, p);
  bm.commitFullBlocks(a.blockTable, a.hashes, p, p.length);
  const cachedIds = a.blockTable.slice(0, 2);
  bm.free(a.blockTable);
  assert.equal(bm.numFreeBlocks, 4);
  const hit = bm.matchPrefix(p);
  assert.deepEqual(hit.blockIds, cachedIds, 'free blocks still answer the prefix');
  assert.equal(bm.blocksNeeded(p.length, hit.blockIds), 3, 'reviving free blocks takes them from the pool');
  const b = bm.allocate(hit, p.length)!;
  assert.deepEqual(b.blockTable.slice(0, 2), cachedIds);
  bm.checkIntegrity([b.blockTable]);
  bm.free(b.blockTable);
  // Freed in reverse order: the free queue now ends ... block1, block0. Fresh allocations take the least
  // recently freed first, so the prefix tail (block 1) is evicted before its head (block 0).
  const fresh1 = bm.allocate({ blockIds: [], hashes: [] }, 3 * bs)!; // takes the third block, the fourth, then block 1
  assert.ok(fresh1.blockTable.includes(cachedIds[1]!));
  assert.ok(!fresh1.blockTable.includes(cachedIds[0]!));
  assert.deepEqual(bm.matchPrefix(p).blockIds, [cachedIds[0]], 'the head block is still cached');
  bm.checkIntegrity([fresh1.blockTable]);
});

test('an identical block computed twice is indexed once; the second copy stays private', () => {
  const bm = new BlockManager(8, bs, true);
  const p = range(5, 10);
  const a = admit(bm, p), b = bm.allocate({ blockIds: [], hashes: [] }, p.length)!; // b skipped the cache
  bm.commitFullBlocks(a.blockTable, a.hashes, p, 4);
  bm.commitFullBlocks(b.blockTable, b.hashes, p, 4);
  assert.deepEqual(b.hashes, a.hashes, 'both sequences know the hash');
  assert.deepEqual(bm.matchPrefix(p).blockIds, [a.blockTable[0]], 'the first copy serves');
  bm.checkIntegrity([a.blockTable, b.blockTable]);
});

test('retain adds a holder (background save); double free and retain of a free block throw', () => {
  const bm = new BlockManager(4, bs, false);
  const a = admit(bm, range(8));
  const copy = a.blockTable.slice();
  bm.retain(copy);
  bm.free(a.blockTable);
  assert.equal(bm.numFreeBlocks, 2, 'still held by the save');
  bm.checkIntegrity([copy]);
  const again = copy.slice();
  bm.free(copy);
  assert.equal(bm.numFreeBlocks, 4);
  assert.throws(() => bm.free(again), /double free/);
  assert.throws(() => bm.retain([0]), /retain of free block/);
});

test('checkIntegrity names the broken invariant', () => {
  const bm = new BlockManager(4, bs, false);
  const a = admit(bm, range(8));
  bm.checkIntegrity([a.blockTable]);
  assert.throws(() => bm.checkIntegrity([]), /refcount 1 != 0 holders/, 'a leaked block (no holder)');
  assert.throws(() => bm.checkIntegrity([a.blockTable, a.blockTable]), /refcount 1 != 2 holders/, 'a shared block counted once');
  assert.throws(() => bm.checkIntegrity([[...a.blockTable, 3]]), /refcount 0 != 1 holders/, 'a table naming a free block');
});

test('prefix-cache stats count queried and hit tokens', () => {
  const bm = new BlockManager(4, bs, true);
  bm.recordPrefixQuery(10, 4);
  bm.recordPrefixQuery(6, 0);
  assert.equal(bm.prefixQueries, 16);
  assert.equal(bm.prefixHits, 4);
});
