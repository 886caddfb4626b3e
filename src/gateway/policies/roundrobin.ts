// roundrobin: each request starts one engine further along; the rest follow in ring order.
import { rotated, type RouteRequest, type RoutingPolicy } from './policy.js';
import type { Upstream } from '../upstream.js';

export class RoundRobinPolicy implements RoutingPolicy {
  readonly name = 'roundrobin';
  private next = 0;

  order(all: readonly Upstream[], _req?: RouteRequest): Upstream[] {
    const n = all.length;
    if (!n) return [];
    const start = this.next++ % n;
    if (this.next >= n * 1_000_000) this.next %= n;
    return rotated(all, start);
  }
}
