// prefixaware: the engine that already holds the longest prefix of this prompt first (block keys:
// block-keys.ts), as learned from the requests this gateway routed (an engine holds what it was sent,
// until its LRU memory of MAX_KEYS_PER_ENGINE keys forgets it); ties and misses go by least load.
import type { Upstream } from '../upstream.js';
import { type RouteRequest, type RoutingPolicy } from './policy.js';
import { LeastLoadPolicy } from './least-load.js';
import { requestKeys, DEFAULT_BLOCK_SIZE } from './block-keys.js';

const MAX_KEYS_PER_ENGINE = 200_000;

/** Longest prefix of `keys` present in `has`, in blocks. */
export function matchedBlocks(keys: readonly string[], has: (k: string) => boolean): number {
  let n = 0;
  while (n < keys.length && has(keys[n]!)) n++;
  return n;
}

export class PrefixAwarePolicy implements RoutingPolicy {
  readonly name: string = 'prefixaware';
  private readonly byEngine = new Map<string, Map<string, true>>(); // origin -> keys, insertion order = LRU
  private readonly fallback = new LeastLoadPolicy();
  private readonly keyCache = new WeakMap<RouteRequest, string[]>();

  constructor(readonly blockSize = DEFAULT_BLOCK_SIZE) {}

  protected keys(req: RouteRequest): string[] {
    let k = this.keyCache.get(req);
    if (!k) this.keyCache.set(req, (k = requestKeys(req, this.blockSize)));
    return k;
  }

  /** Blocks of this request's prefix that `u` holds. */
  protected hit(u: Upstream, keys: readonly string[]): number {
    const set = this.byEngine.get(u.origin);
    return set ? matchedBlocks(keys, (k) => set.has(k)) : 0;
  }

  order(all: readonly Upstream[], req: RouteRequest | undefined): Upstream[] {
    const base = this.fallback.order(all);
    if (!req || all.length < 2) return base;
    for (const o of [...this.byEngine.keys()]) if (!all.some((u) => u.origin === o)) this.byEngine.delete(o);
    const keys = this.keys(req);
    if (!keys.length) return base;
    const hits = new Map(base.map((u) => [u, this.hit(u, keys)]));
    const rank = new Map(base.map((u, i) => [u, i]));
    return base.sort((a, b) => hits.get(b)! - hits.get(a)! || rank.get(a)! - rank.get(b)!);
  }

  prefixHitTokens(u: Upstream, req: RouteRequest): number {
    return this.hit(u, this.keys(req)) * this.blockSize;
  }

  onRouted(chosen: Upstream, req: RouteRequest | undefined): void {
    if (!req) return;
    let set = this.byEngine.get(chosen.origin);
    if (!set) this.byEngine.set(chosen.origin, (set = new Map()));
    for (const k of this.keys(req)) {
      set.delete(k);
      set.set(k, true);
    }
    while (set.size > MAX_KEYS_PER_ENGINE) set.delete(set.keys().next().value!);
  }
}
