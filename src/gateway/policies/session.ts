// session: consistent hashing of a request header (vllm_router's --session-key) onto a ring of virtual
// nodes, so one session keeps its engine (its KV cache) and only ~1/n of sessions move when an engine
// joins or leaves. The rest of the order walks the ring on from there. No header: round robin.
import { createHash } from 'node:crypto';
import type { Upstream } from '../upstream.js';
import { type RouteRequest, type RoutingPolicy } from './policy.js';
import { RoundRobinPolicy } from './roundrobin.js';

const VNODES = 64;

function h32(s: string): number {
  return createHash('sha1').update(s).digest().readUInt32BE(0);
}

export class SessionPolicy implements RoutingPolicy {
  readonly name = 'session';
  private readonly fallback = new RoundRobinPolicy();
  private ringKey = '';
  private ring: { point: number; origin: string }[] = [];

  constructor(readonly sessionKey: string) {}

  order(all: readonly Upstream[], req: RouteRequest | undefined): Upstream[] {
    const raw = req?.headers[this.sessionKey.toLowerCase()];
    const id = Array.isArray(raw) ? raw[0] : raw;
    if (!id || all.length < 2) return this.fallback.order(all);
    this.buildRing(all);
    const p = h32(id);
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ring[mid]!.point < p) lo = mid + 1;
      else hi = mid;
    }
    const byOrigin = new Map(all.map((u) => [u.origin, u]));
    const out: Upstream[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < this.ring.length && out.length < all.length; i++) {
      const o = this.ring[(lo + i) % this.ring.length]!.origin;
      if (seen.has(o)) continue;
      seen.add(o);
      out.push(byOrigin.get(o)!);
    }
    return out;
  }

  private buildRing(all: readonly Upstream[]): void {
    const key = all.map((u) => u.origin).join(',');
    if (key === this.ringKey) return;
    this.ringKey = key;
    this.ring = all
      .flatMap((u) => Array.from({ length: VNODES }, (_, v) => ({ point: h32(`${u.origin}#${v}`), origin: u.origin })))
      .sort((a, b) => a.point - b.point);
  }
}
