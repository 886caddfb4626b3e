// Conditional disaggregation (NVIDIA Dynamo's rules) for routing logics with a prefill pool: per
// request, before any leg, whether the prefill leg runs ('remote') or the decoder prefills the prompt
// itself ('local_*'). Decode first (llm-d's order): the decoder is picked by its pool's policy, and the
// rules read that decoder's prefix hit (policy.prefixHitTokens: prefixaware / kvaware know one) and load.
//   left = prompt tokens - the decoder's prefix hit
//   1. left <= --local-prefill-max-tokens        -> local_short (no hit) | local_prefix_hit (hit > 0)
//   2. every usable prefiller's load >= --prefill-busy-load -> local_prefill_busy
//   3. a local decision on a decoder whose load >= --decode-busy-load -> remote_decode_busy (veto)
//   otherwise remote. A 0 threshold turns its rule off. Every decision is counted in
//   pdserve:router_disagg_decisions_total{decision}. The request keeps that decode order (the policy is
//   asked once per request) and counts in its first decoder's load (Upstream.reserved) until its decode
//   leg starts, so a burst does not pile onto one decoder while its prefills run.
import { Counter, type Registry } from 'prom-client';
import type { UpstreamSet } from '../gateway/upstream-set.js';
import type { Upstream } from '../gateway/upstream.js';
import type { RouteRequest } from '../gateway/policies/policy.js';
import { loadOf } from '../gateway/policies/policy.js';
import { tokensOf } from '../gateway/policies/block-keys.js';
import { promptSize } from '../gateway/conditional.js';

export const disaggDecisions = ['remote', 'local_short', 'local_prefix_hit', 'local_prefill_busy', 'remote_decode_busy'] as const;
export type DisaggDecision = (typeof disaggDecisions)[number];

export interface ConditionalRules {
  localPrefillMaxTokens: number;
  prefillBusyLoad: number;
  decodeBusyLoad: number;
}

export interface DecisionInput {
  promptTokens: number;
  decoderHitTokens: number;
  decoderLoad: number;
  prefillerLoads: number[]; // of the usable (healthy, breaker passable) prefillers; [] = none usable
}

/** The rules above as a pure function. */
export function decideDisagg(r: ConditionalRules, x: DecisionInput): DisaggDecision {
  const left = Math.max(0, x.promptTokens - x.decoderHitTokens);
  let local: DisaggDecision | null = null;
  if (r.localPrefillMaxTokens > 0 && left <= r.localPrefillMaxTokens) local = x.decoderHitTokens > 0 ? 'local_prefix_hit' : 'local_short';
  else if (r.prefillBusyLoad > 0 && x.prefillerLoads.length > 0 && x.prefillerLoads.every((l) => l >= r.prefillBusyLoad)) local = 'local_prefill_busy';
  if (!local) return 'remote';
  return r.decodeBusyLoad > 0 && x.decoderLoad >= r.decodeBusyLoad ? 'remote_decode_busy' : local;
}

export const conditionalOn = (r: ConditionalRules) => r.localPrefillMaxTokens > 0 || r.prefillBusyLoad > 0;

export class ConditionalDisagg {
  private readonly counter: Counter<'decision'>;
  /** the counter's values, readable at once (the dashboard) */
  readonly tally = Object.fromEntries(disaggDecisions.map((d) => [d, 0])) as Record<DisaggDecision, number>;

  constructor(readonly rules: ConditionalRules, registry: Registry) {
    this.counter = new Counter({
      name: 'pdserve:router_disagg_decisions_total',
      help: `Conditional disaggregation decisions per request: ${disaggDecisions.join(' | ')}`,
      labelNames: ['decision'],
      registers: [registry],
    });
    for (const d of disaggDecisions) this.counter.inc({ decision: d }, 0);
  }

  /** Decides for one request. With a decoder: its decode order, and release() to call once its decode
   *  leg starts or it ends (idempotent). */
  decide(prefillers: UpstreamSet, decoders: UpstreamSet, route: RouteRequest, allow?: (u: Upstream) => boolean): { decision: DisaggDecision; order?: Upstream[]; release?: () => void } {
    const usable = (u: Upstream) => u.healthy && (u.breaker?.passable ?? true);
    const order = decoders.candidates(true, route, allow);
    const decoder = order.find(usable);
    if (!decoder) return this.count('remote'); // no usable decoder: the decode leg tries them and reports it
    const decision = decideDisagg(this.rules, {
      promptTokens: tokensOf(route)?.length ?? promptSize(route.body),
      decoderHitTokens: decoders.policy.prefixHitTokens?.(decoder, route) ?? 0,
      decoderLoad: loadOf(decoder),
      prefillerLoads: (allow ? prefillers.all.filter(allow) : prefillers.all).filter(usable).map(loadOf),
    });
    this.count(decision);
    decoder.reserved++;
    let held = true;
    const release = () => {
      if (held) decoder.reserved--;
      held = false;
    };
    return { decision, order: [decoder, ...order.filter((u) => u !== decoder)], release };
  }

  private count(decision: DisaggDecision): { decision: DisaggDecision } {
    this.counter.inc({ decision });
    this.tally[decision]++;
    return { decision };
  }
}
