// least-load: the engine with the least load (policy.ts loadOf: in flight here or running there, plus
// its queue) first, KV usage breaking ties, then round-robin order among equals so ties spread.
import type { Upstream } from '../upstream.js';
import { kvUsageOf, loadOf, type RouteRequest, type RoutingPolicy } from './policy.js';
import { RoundRobinPolicy } from './roundrobin.js';

export class LeastLoadPolicy implements RoutingPolicy {
  readonly name = 'least-load';
  private readonly rr = new RoundRobinPolicy();

  order(all: readonly Upstream[], _req?: RouteRequest): Upstream[] {
    const ring = this.rr.order(all);
    const rank = new Map(ring.map((u, i) => [u, i]));
    return ring.sort((a, b) => loadOf(a) - loadOf(b) || kvUsageOf(a) - kvUsageOf(b) || rank.get(a)! - rank.get(b)!);
  }
}
