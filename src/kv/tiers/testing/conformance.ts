// The one behaviour suite every KvTier runs (called from each tier's test file).
// The factory returns a tier that holds exactly `chunks` chunks of CHUNK bytes (CHUNK is a multiple of
// 4 KiB so page-granular tiers fit the same count), and a cleanup.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type KvTier, TierFullError } from '../tier.js';

export const CONFORMANCE_CHUNK = 64 * 1024;

export interface TierFixture {
  tier: KvTier;
  cleanup(): Promise<void>;
  /** Optional integrity check of the tier's bookkeeping (run after each test). */
  check?(): Promise<void> | void;
}

const key = (s: string) => createHash('sha256').update(s).digest('hex');
function bytesOf(seed: number, size = CONFORMANCE_CHUNK): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export function runTierConformance(name: string, make: (chunks: number) => Promise<TierFixture>): void {
  describe(`KvTier conformance: ${name}`, () => {
    async function withTier(chunks: number, body: (t: KvTier) => Promise<void>): Promise<void> {
      const f = await make(chunks);
      try {
        await body(f.tier);
        await f.check?.();
      } finally {
        await f.cleanup();
      }
    }

    it('put then get returns identical bytes; absent keys miss', () =>
      withTier(4, async (t) => {
        const data = bytesOf(1);
        assert.equal(await t.put(key('a'), data), true);
        assert.equal(await t.contains(key('a')), true);
        const h = await t.get(key('a'));
        assert.ok(h);
        assert.deepEqual(Buffer.from(h.bytes), Buffer.from(data));
        h.release();
        h.release(); // idempotent
        assert.equal(await t.get(key('missing')), null);
        assert.equal(await t.contains(key('missing')), false);
      }));

    it('a reserved chunk is invisible until commit; a second writer of the key is refused', () =>
      withTier(4, async (t) => {
        const r = await t.reserve(key('w'), CONFORMANCE_CHUNK);
        assert.ok(r);
        assert.equal(r.view.byteLength, CONFORMANCE_CHUNK);
        r.view.set(bytesOf(2));
        assert.equal(await t.contains(key('w')), false);
        assert.equal(await t.lookupPrefix([key('w')]), 0);
        assert.equal(await t.get(key('w')), null);
        assert.equal(await t.reserve(key('w'), CONFORMANCE_CHUNK), null);
        await r.commit();
        assert.equal(await t.lookupPrefix([key('w')]), 1);
        const h = (await t.get(key('w')))!;
        assert.deepEqual(Buffer.from(h.bytes), Buffer.from(bytesOf(2)));
        h.release();
        assert.equal(await t.put(key('w'), bytesOf(3)), false, 'committed bytes never change');
      }));

    it('abort frees the reservation', () =>
      withTier(2, async (t) => {
        const r = (await t.reserve(key('x'), CONFORMANCE_CHUNK))!;
        await r.abort();
        assert.equal(await t.contains(key('x')), false);
        assert.equal(await t.put(key('p1'), bytesOf(1)), true);
        assert.equal(await t.put(key('p2'), bytesOf(2)), true);
        assert.equal((await t.stats()).evictions, 0);
      }));

    it('lookupPrefix counts only leading present keys', () =>
      withTier(4, async (t) => {
        await t.put(key('c0'), bytesOf(0));
        await t.put(key('c2'), bytesOf(2));
        assert.equal(await t.lookupPrefix([key('c0'), key('c1'), key('c2')]), 1);
        await t.put(key('c1'), bytesOf(1));
        assert.equal(await t.lookupPrefix([key('c0'), key('c1'), key('c2'), key('c3')]), 3);
        assert.equal(await t.lookupPrefix([]), 0);
      }));

    it('evicts the least recently used chunk when full', () =>
      withTier(3, async (t) => {
        for (const k of ['e0', 'e1', 'e2']) assert.equal(await t.put(key(k), bytesOf(k.length)), true);
        (await t.get(key('e0')))!.release(); // e0 now most recent; e1 is the oldest
        assert.equal(await t.put(key('e3'), bytesOf(3)), true);
        assert.equal(await t.contains(key('e1')), false);
        assert.equal(await t.contains(key('e0')), true);
        assert.equal(await t.contains(key('e3')), true);
        assert.equal((await t.stats()).evictions, 1);
      }));

    it('never evicts pinned chunks; full when everything is pinned', () =>
      withTier(2, async (t) => {
        await t.put(key('q0'), bytesOf(0));
        await t.put(key('q1'), bytesOf(1));
        assert.equal(await t.pin([key('q0'), key('q1')]), 2);
        await assert.rejects(t.put(key('q2'), bytesOf(2)), TierFullError);
        await t.unpin([key('q1')]);
        assert.equal(await t.put(key('q2'), bytesOf(2)), true);
        assert.equal(await t.contains(key('q0')), true, 'pinned chunk survived');
        assert.equal(await t.contains(key('q1')), false);
        await t.unpin([key('q0')]);
      }));

    it('lookupPrefix with pin pins the hits until unpinned', () =>
      withTier(2, async (t) => {
        await t.put(key('l0'), bytesOf(0));
        await t.put(key('l1'), bytesOf(1));
        assert.equal(await t.lookupPrefix([key('l0'), key('l1')], { pin: true }), 2);
        assert.equal((await t.stats()).pinnedChunks, 2);
        await assert.rejects(t.put(key('l2'), bytesOf(2)), TierFullError);
        await t.unpin([key('l0'), key('l1')]);
        assert.equal((await t.stats()).pinnedChunks, 0);
        assert.equal(await t.put(key('l2'), bytesOf(2)), true);
      }));

    it('a pinned chunk that is deleted keeps its space until the last unpin (deferred free)', () =>
      withTier(2, async (t) => {
        const data = bytesOf(7);
        await t.put(key('d'), data);
        const h = (await t.get(key('d')))!; // a read in progress
        assert.equal(await t.pin([key('d')]), 1);
        assert.equal(await t.delete(key('d')), true);
        assert.equal(await t.contains(key('d')), false);
        assert.equal(await t.delete(key('d')), false);
        // Churn through the rest of the space: the pinned chunk's space must not be reused.
        for (let i = 0; i < 4; i++) assert.equal(await t.put(key('churn' + i), bytesOf(100 + i)), true);
        await assert.rejects(t.put(key('too-much'), bytesOf(9, CONFORMANCE_CHUNK * 2)), TierFullError);
        assert.ok(h.valid());
        assert.deepEqual(Buffer.from(h.bytes), Buffer.from(data), 'bytes of a held read stay intact');
        h.release();
        const before = (await t.stats()).usedBytes;
        await t.unpin([key('d')]);
        assert.ok((await t.stats()).usedBytes <= before - CONFORMANCE_CHUNK, 'space freed at the last unpin');
        assert.equal(await t.put(key('too-much'), bytesOf(9, CONFORMANCE_CHUNK * 2)), true);
      }));

    it('stats count chunks and bytes', () =>
      withTier(4, async (t) => {
        await t.put(key('s0'), bytesOf(0));
        await t.put(key('s1'), bytesOf(1, 4096));
        const s = await t.stats();
        assert.equal(s.chunks, 2);
        assert.ok(s.usedBytes >= CONFORMANCE_CHUNK + 4096);
        assert.ok(s.capacityBytes >= 4 * CONFORMANCE_CHUNK);
      }));
  });
}
