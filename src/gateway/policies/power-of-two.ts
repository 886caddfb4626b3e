// power-of-two: two engines drawn at random, the less loaded of them first (policy.ts loadOf), then the
// other, then the rest by load. Near least-load balance without every request herding onto one engine
// between stats scrapes.
import type { Upstream } from '../upstream.js';
import { kvUsageOf, loadOf, type RouteRequest, type RoutingPolicy } from './policy.js';

export class PowerOfTwoPolicy implements RoutingPolicy {
  readonly name = 'power-of-two';
  constructor(private readonly random: () => number = Math.random) {}

  order(all: readonly Upstream[], _req?: RouteRequest): Upstream[] {
    const n = all.length;
    if (n < 2) return [...all];
    const i = Math.floor(this.random() * n) % n;
    let j = Math.floor(this.random() * (n - 1)) % (n - 1);
    if (j >= i) j++;
    const cmp = (a: Upstream, b: Upstream) => loadOf(a) - loadOf(b) || kvUsageOf(a) - kvUsageOf(b);
    const pair = [all[i]!, all[j]!].sort(cmp);
    const rest = all.filter((_, k) => k !== i && k !== j).sort(cmp);
    return [...pair, ...rest];
  }
}
