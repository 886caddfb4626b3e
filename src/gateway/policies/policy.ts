// The routing-policy seam: how one pool (prefillers or decoders) orders its engines for one request.
// Contract (checked for every policy by policies/conformance.test.ts):
// - order(all, req) returns a permutation of `all`: every upstream exactly once, the preferred first;
//   the caller (UpstreamSet.candidates) then puts healthy ones before unhealthy ones, keeping this order;
// - it never mutates `all`, never throws, and works for 0 or 1 upstreams and for req undefined;
// - it may keep state (a cursor, a ring, an index) but must forget upstreams that left (`all` changes
//   when discovery adds or removes engines).
import type { IncomingHttpHeaders } from 'node:http';
import type { Upstream } from '../upstream.js';
import type { JsonObject } from '../prefill-body.js';

export interface RouteRequest {
  requestId: string;
  headers: IncomingHttpHeaders;
  body: JsonObject;
  /** prompt token ids when the router tokenized the request (prefix-aware policies); else undefined */
  tokens?: readonly number[];
}

export interface RoutingPolicy {
  readonly name: string;
  order(all: readonly Upstream[], req: RouteRequest | undefined): Upstream[];
  /** called once the request was sent to `chosen` (prefix policies remember what it now caches) */
  onRouted?(chosen: Upstream, req: RouteRequest | undefined): void;
  /** prefix policies: prompt tokens of `req` that `u` holds in its prefix cache, as far as this policy
   *  knows (whole blocks; text prompts: about 4 characters a token). Conditional disaggregation reads it. */
  prefixHitTokens?(u: Upstream, req: RouteRequest): number;
}

/** Load of an engine for least-load / power-of-two: what the gateway has in flight there, or what the
 *  engine itself reports running when larger (other clients), plus its queue and the requests routed
 *  to it that are still in their prefill leg; lower is better. */
export function loadOf(u: Upstream): number {
  const s = u.engineStats;
  return Math.max(u.inflight, s?.running ?? 0) + (s?.waiting ?? 0) + u.reserved;
}

/** Tie-break by KV usage (0..1), lower first. */
export function kvUsageOf(u: Upstream): number {
  return u.engineStats?.kvUsage ?? 0;
}

/** Rotates `all` by a cursor: the round-robin order. */
export function rotated(all: readonly Upstream[], start: number): Upstream[] {
  const n = all.length;
  return Array.from({ length: n }, (_, i) => all[(start + i) % n]!);
}
