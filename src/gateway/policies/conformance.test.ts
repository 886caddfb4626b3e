// The one conformance suite every routing policy runs (policy.ts states the contract), then each
// policy's own behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Upstream } from '../upstream.js';
import { createPolicy, policyNames } from './registry.js';
import type { RouteRequest, RoutingPolicy } from './policy.js';
import { PowerOfTwoPolicy } from './power-of-two.js';
import { KvAwarePolicy } from './kv-aware.js';
import { KvIndex } from './kv-index.js';
import { chainKeys } from './block-keys.js';

const ups = (n: number) => Array.from({ length: n }, (_, i) => new Upstream(`http://127.0.0.1:${9100 + i}`, 'decode', { connectTimeoutMs: 100 }));
const req = (over: Partial<RouteRequest> = {}): RouteRequest => ({ requestId: 'r', headers: { 'x-user': 'alice' }, body: { prompt: 'hello world '.repeat(20) }, ...over });
const make = (name: string): RoutingPolicy => createPolicy(name, { sessionKey: 'x-user' });

for (const name of policyNames) {
  test(`conformance ${name}: a permutation, input untouched, 0/1 upstreams, no request`, async () => {
    const p = make(name);
    const all = ups(5);
    const before = [...all];
    for (let i = 0; i < 50; i++) {
      const r = i % 3 === 0 ? undefined : req({ headers: { 'x-user': `u${i % 7}` }, body: { prompt: `p${i % 4} `.repeat(40) } });
      const o = p.order(all, r);
      assert.equal(o.length, all.length);
      assert.equal(new Set(o).size, all.length, 'each upstream once');
      for (const u of o) assert.ok(all.includes(u));
      if (o[0]) p.onRouted?.(o[0], r);
    }
    assert.deepEqual(all, before, 'order() must not mutate its input');
    assert.deepEqual(p.order([], req()), []);
    const one = ups(1);
    assert.deepEqual(p.order(one, req()), one);
    assert.deepEqual(p.order(one, undefined), one);
    for (const u of all) await u.close();
  });

  test(`conformance ${name}: prefixHitTokens (when it has one) is whole blocks of the prompt, more once routed there`, async () => {
    const p = make(name);
    if (!p.prefixHitTokens) return;
    const all = ups(2);
    const tokens = Array.from({ length: 100 }, (_, i) => i + 7);
    const r = req({ body: { prompt: tokens } });
    for (const u of all) assert.equal(p.prefixHitTokens(u, r), 0, 'nothing routed yet: no hit');
    p.onRouted?.(all[1]!, r);
    const hit = p.prefixHitTokens(all[1]!, r);
    assert.ok(hit > 0 && hit <= tokens.length && hit % 16 === 0, `hit ${hit}`);
    assert.equal(p.prefixHitTokens(all[0]!, r), 0);
    assert.equal(p.prefixHitTokens(all[1]!, req({ body: { prompt: [...tokens.slice(0, 40), 999, ...tokens.slice(41)] } })), 32, 'the shared prefix only');
    for (const u of all) await u.close();
  });

  test(`conformance ${name}: forgets engines that left, serves new ones`, async () => {
    const p = make(name);
    const all = ups(4);
    for (let i = 0; i < 8; i++) p.onRouted?.(p.order(all, req())[0]!, req());
    const fewer = all.slice(1);
    const o = p.order(fewer, req());
    assert.equal(o.length, 3);
    assert.ok(!o.includes(all[0]!));
    const firsts = new Set<Upstream>();
    for (let i = 0; i < 200; i++) firsts.add(p.order(fewer, req({ headers: { 'x-user': `u${i}` }, body: { prompt: `distinct ${i} `.repeat(30) } }))[0]!);
    assert.ok(firsts.size >= 2, `${name} spreads distinct requests over the pool (saw ${firsts.size})`);
    for (const u of all) await u.close();
  });
}

test('roundrobin: each engine first once per n requests', async () => {
  const p = make('roundrobin');
  const all = ups(3);
  const firsts = Array.from({ length: 6 }, () => p.order(all, undefined)[0]!.origin);
  assert.deepEqual(firsts, [...all, ...all].map((u) => u.origin));
  for (const u of all) await u.close();
});

test('session: one key sticks to one engine; removing another engine moves few sessions', async () => {
  const p = make('session');
  const all = ups(4);
  const pick = (id: string, pool = all) => p.order(pool, req({ headers: { 'x-user': id } }))[0]!.origin;
  for (let i = 0; i < 20; i++) assert.equal(pick('bob'), pick('bob'));
  const ids = Array.from({ length: 200 }, (_, i) => `user-${i}`);
  const before = new Map(ids.map((id) => [id, pick(id)]));
  const removed = all[3]!.origin;
  const after = new Map(ids.map((id) => [id, pick(id, all.slice(0, 3))]));
  const moved = ids.filter((id) => before.get(id) !== removed && before.get(id) !== after.get(id));
  assert.equal(moved.length, 0, 'sessions on surviving engines stay put');
  for (const u of all) await u.close();
});

test('least-load: lowest in-flight + queue first, scraped stats count', async () => {
  const p = make('least-load');
  const all = ups(3);
  all[0]!.inflight = 5;
  all[1]!.inflight = 1;
  all[2]!.inflight = 2;
  assert.equal(p.order(all, undefined)[0], all[1]);
  all[1]!.engineStats = { running: 1, waiting: 9, kvUsage: 0.1, prefixHits: 0, prefixQueries: 0, at: 0 };
  assert.equal(p.order(all, undefined)[0], all[2]);
  for (const u of all) await u.close();
});

test('power-of-two: the less loaded of the two drawn first', async () => {
  const seq = [0.0, 0.5]; // i = 0, j -> 2 of 4 (0.5*3 = 1 -> >= i -> 2)
  const p = new PowerOfTwoPolicy(() => seq.shift() ?? 0);
  const all = ups(4);
  all[0]!.inflight = 3;
  all[2]!.inflight = 1;
  const o = p.order(all, undefined);
  assert.deepEqual(o.slice(0, 2), [all[2], all[0]]);
  for (const u of all) await u.close();
});

test('prefixaware: a repeated prefix goes back to the engine that holds it', async () => {
  const p = make('prefixaware');
  const all = ups(3);
  const shared = Array.from({ length: 64 }, (_, i) => i + 1);
  const r1 = req({ body: { prompt: [...shared, 500, 501] } });
  const first = p.order(all, r1)[0]!;
  p.onRouted!(first, r1);
  first.inflight = 10; // even when busier: the cached prefix wins over load
  for (let i = 0; i < 5; i++) assert.equal(p.order(all, req({ body: { prompt: [...shared, 900 + i] } }))[0], first);
  const other = p.order(all, req({ body: { prompt: [7, 7, 7, ...shared] } }))[0];
  assert.notEqual(other, first, 'no shared prefix: least load');
  for (const u of all) await u.close();
});

test('kvaware: routes to the engine whose KV events report the longest prefix; removal and clear forget it', async () => {
  const index = new KvIndex();
  const p = new KvAwarePolicy(index);
  const all = ups(3);
  const shared = Array.from({ length: 64 }, (_, i) => i + 1);
  const keys = chainKeys(shared, 16); // what a pdserve engine with block size 16 reports for these tokens
  index.apply(all[2]!.origin, [{ type: 'BlockStored', blockHashes: keys, parentBlockHash: null, tokenIds: shared, blockSize: 16, loraId: null, medium: 'GPU' }]);
  index.apply(all[1]!.origin, [{ type: 'BlockStored', blockHashes: keys.slice(0, 1), parentBlockHash: null, tokenIds: shared.slice(0, 16), blockSize: 16, loraId: null, medium: 'GPU' }]);
  all[2]!.inflight = 1; // a little busier, but it holds all 4 blocks of the prefix
  assert.equal(p.order(all, req({ body: { prompt: [...shared, 900] } }))[0], all[2]);
  all[2]!.inflight = 3; // a queue outweighs the hit (cost 0 + 0.5 x 3 x 4 = 6 > 4 uncached blocks elsewhere)
  assert.notEqual(p.order(all, req({ body: { prompt: [...shared, 900] } }))[0], all[2]);
  all[2]!.inflight = 1;
  assert.equal(index.matched(all[1]!.origin, keys), 1);
  index.apply(all[2]!.origin, [{ type: 'BlockRemoved', blockHashes: keys.slice(1), medium: 'GPU' }]);
  assert.equal(index.matched(all[2]!.origin, keys), 1, 'the chain breaks at the first removed block');
  index.apply(all[2]!.origin, [{ type: 'AllBlocksCleared' }]);
  index.apply(all[1]!.origin, [{ type: 'AllBlocksCleared' }]);
  assert.notEqual(p.order(all, req({ body: { prompt: [...shared, 901] } }))[0], all[2], 'nothing held: least load (not the busy engine)');
  for (const u of all) await u.close();
});

test('kvaware: events with a foreign hash function (vLLM ints) are re-keyed from their token ids', async () => {
  const index = new KvIndex();
  const p = new KvAwarePolicy(index);
  const all = ups(2);
  const toks = Array.from({ length: 32 }, (_, i) => 100 + i);
  index.apply(all[1]!.origin, [
    { type: 'BlockStored', blockHashes: ['11'], parentBlockHash: null, tokenIds: toks.slice(0, 16), blockSize: 16, loraId: null, medium: 'GPU' },
    { type: 'BlockStored', blockHashes: ['22'], parentBlockHash: '11', tokenIds: toks.slice(16), blockSize: 16, loraId: null, medium: 'GPU' },
  ]);
  assert.equal(index.matched(all[1]!.origin, chainKeys(toks, 16)), 2);
  all[1]!.inflight = 1;
  assert.equal(p.order(all, req({ body: { prompt: [...toks, 5] } }))[0], all[1]);
  index.apply(all[1]!.origin, [{ type: 'BlockRemoved', blockHashes: ['11'], medium: null }]);
  assert.equal(index.matched(all[1]!.origin, chainKeys(toks, 16)), 0);
  for (const u of all) await u.close();
});

test('kvaware: a request just routed counts as held there until its events come (burst affinity); the index is bounded', async () => {
  let now = 1000;
  const p = new KvAwarePolicy(new KvIndex(4), () => now);
  const all = ups(3);
  const shared = Array.from({ length: 48 }, (_, i) => i + 7);
  const r1 = req({ body: { prompt: [...shared, 1] } });
  const first = p.order(all, r1)[0]!;
  p.onRouted(first, r1);
  first.inflight = 1;
  assert.equal(p.order(all, req({ body: { prompt: [...shared, 2] } }))[0], first);
  now += 10_000;
  assert.notEqual(p.order(all, req({ body: { prompt: [...shared, 3] } }))[0], first, 'pending entries expire');
  const toks = Array.from({ length: 16 * 10 }, (_, i) => i);
  p.index.apply(all[0]!.origin, [{ type: 'BlockStored', blockHashes: chainKeys(toks, 16), parentBlockHash: null, tokenIds: toks, blockSize: 16, loraId: null, medium: 'GPU' }]);
  assert.equal(p.index.blocks(all[0]!.origin), 4);
  assert.equal(p.index.counters.evicted, 6);
  for (const u of all) await u.close();
});
