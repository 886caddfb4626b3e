// A role's upstreams: the routing policy's order over healthy ones, and the background health checker.
import { Upstream, type Role, type UpstreamOptions } from './upstream.js';
import { getLogger } from '../util/logger.js';
import type { RouteRequest, RoutingPolicy } from './policies/policy.js';
import { RoundRobinPolicy } from './policies/roundrobin.js';

const log = getLogger('proxy');

export class UpstreamSet {
  readonly role: Role;
  all: Upstream[];
  policy: RoutingPolicy; // replaced when the router's dynamic config changes the routing logic
  private readonly opts: UpstreamOptions;

  constructor(role: Role, origins: string[], opts: UpstreamOptions, policy: RoutingPolicy = new RoundRobinPolicy()) {
    this.role = role;
    this.opts = opts;
    this.policy = policy;
    this.all = origins.map((o) => new Upstream(o, role, opts));
  }

  /**
   * Discovery changed the pool: keeps the Upstream (pool, health, stats) of origins still present, adds
   * new ones (healthy until a check says otherwise), closes the removed ones once their legs finish
   * (undici's close waits for requests in flight). Returns the added and removed origins.
   */
  replace(origins: string[]): { added: Upstream[]; removed: Upstream[] } {
    const want = [...new Set(origins)];
    const keep = new Map(this.all.map((u) => [u.origin, u]));
    const next = want.map((o) => keep.get(o) ?? new Upstream(o, this.role, this.opts));
    const added = next.filter((u) => !keep.has(u.origin));
    const removed = this.all.filter((u) => !want.includes(u.origin));
    this.all = next;
    for (const u of removed) void u.pool.close().catch(() => undefined);
    return { added, removed };
  }

  get size(): number {
    return this.all.length;
  }

  healthyCount(): number {
    return this.all.filter((u) => u.healthy).length;
  }

  /**
   * Candidates for one request, each at most once, in the policy's order: the healthy ones, then, with
   * withUnhealthy (a last resort in case health state is stale), the unhealthy ones. `allow` narrows
   * the pool first (the router: engines serving the requested model). The default policy (round
   * robin) advances its cursor by one per call.
   */
  candidates(withUnhealthy = true, req?: RouteRequest, allow?: (u: Upstream) => boolean): Upstream[] {
    const pool = allow ? this.all.filter(allow) : this.all;
    if (!pool.length) return [];
    const ordered = this.policy.order(pool, req);
    // an open circuit breaker counts as unhealthy (tried last, if at all; the leg asks it again)
    const ok = (u: Upstream) => u.healthy && (u.breaker?.passable ?? true);
    return [...ordered.filter(ok), ...(withUnhealthy ? ordered.filter((u) => !ok(u)) : [])];
  }

  /** Probe every upstream once; logs state changes. */
  async checkAll(timeoutMs: number, onChange?: (u: Upstream) => void): Promise<void> {
    await Promise.all(
      this.all.map(async (u) => {
        const ok = await u.probe(timeoutMs);
        if (ok === u.healthy) return;
        if (ok) {
          u.markUp();
          log.info(`${this.role} instance ${u.origin} is healthy again`);
        } else {
          u.markDown(u.lastError ?? 'health check failed');
          log.warn(`${this.role} instance ${u.origin} is down: ${u.lastError}`);
        }
        onChange?.(u);
      }),
    );
  }

  closeAll(): Promise<void> {
    return Promise.all(this.all.map((u) => u.close())).then(() => undefined);
  }
}
