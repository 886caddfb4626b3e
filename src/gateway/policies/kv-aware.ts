// kvaware: engines ranked by a cost in blocks (NVIDIA Dynamo's KV router, simplified):
//   cost(u) = blocks of the prompt u must still prefill (prompt blocks - its prefix hit)
//           + LOAD_WEIGHT x load(u) x prompt blocks            (load: policy.ts loadOf, requests)
// where the prefix hit is what the engines themselves report through KV events (kv-index.ts, fed by
// src/router/kv-events-feed.ts): a cached prefix wins over a little load, not over a queue. Equal
// costs (no hit anywhere, equal load) go by least load, then round robin. Between routing a request and its engine's BlockStored event (one prefill),
// the request's blocks count as held there for PENDING_TTL_MS, so a burst of requests sharing a prefix
// does not scatter before the first event lands. Keys: block-keys.ts with the block size the engines
// announce in their events (DEFAULT_BLOCK_SIZE until the first event).
import type { Upstream } from '../upstream.js';
import type { RouteRequest, RoutingPolicy } from './policy.js';
import { LeastLoadPolicy } from './least-load.js';
import { loadOf } from './policy.js';
import { DEFAULT_BLOCK_SIZE, requestKeys } from './block-keys.js';
import { KvIndex } from './kv-index.js';
import { matchedBlocks } from './prefix-aware.js';

export const PENDING_TTL_MS = 2_000;
/** one request in flight on an engine weighs this fraction of a whole uncached prompt */
export const LOAD_WEIGHT = 0.5;
const MAX_PENDING_PER_ENGINE = 50_000;

export class KvAwarePolicy implements RoutingPolicy {
  readonly name = 'kvaware';
  private readonly fallback = new LeastLoadPolicy();
  private readonly pending = new Map<string, Map<string, number>>(); // origin -> key -> expiry (ms)
  private readonly keyCache = new WeakMap<RouteRequest, { bs: number; keys: string[] }>();

  constructor(readonly index: KvIndex = new KvIndex(), private readonly now: () => number = Date.now) {}

  private keys(req: RouteRequest): string[] {
    const bs = this.index.blockSize ?? DEFAULT_BLOCK_SIZE;
    let k = this.keyCache.get(req);
    if (!k || k.bs !== bs) this.keyCache.set(req, (k = { bs, keys: requestKeys(req, bs) }));
    return k.keys;
  }

  /** Blocks of `keys` that `u` holds: reported by its events, or routed there moments ago. */
  hit(u: Upstream, keys: readonly string[]): number {
    const reported = this.index.matched(u.origin, keys);
    const p = this.pending.get(u.origin);
    if (!p) return reported;
    const t = this.now();
    return Math.max(reported, matchedBlocks(keys, (k) => (p.get(k) ?? 0) > t));
  }

  order(all: readonly Upstream[], req: RouteRequest | undefined): Upstream[] {
    const base = this.fallback.order(all);
    if (!req || all.length < 2) return base;
    const keys = this.keys(req);
    if (!keys.length) return base;
    const n = keys.length;
    const cost = new Map(base.map((u) => [u, n - this.hit(u, keys) + LOAD_WEIGHT * loadOf(u) * n]));
    const rank = new Map(base.map((u, i) => [u, i]));
    return base.sort((a, b) => cost.get(a)! - cost.get(b)! || rank.get(a)! - rank.get(b)!);
  }

  prefixHitTokens(u: Upstream, req: RouteRequest): number {
    return this.hit(u, this.keys(req)) * (this.index.blockSize ?? DEFAULT_BLOCK_SIZE);
  }

  onRouted(chosen: Upstream, req: RouteRequest | undefined): void {
    if (!req) return;
    const t = this.now();
    for (const [o, m] of this.pending) {
      for (const [k, exp] of m) {
        if (exp > t) break; // insertion order = expiry order
        m.delete(k);
      }
      if (!m.size) this.pending.delete(o);
    }
    let m = this.pending.get(chosen.origin);
    if (!m) this.pending.set(chosen.origin, (m = new Map()));
    for (const k of this.keys(req)) {
      m.delete(k);
      m.set(k, t + PENDING_TTL_MS);
    }
    while (m.size > MAX_PENDING_PER_ENGINE) m.delete(m.keys().next().value!);
  }

  /** An engine left or was ejected: nothing it held counts any more. */
  forget(origin: string): void {
    this.pending.delete(origin);
    this.index.clearEngine(origin);
  }
}
