// Routing policies by name (the names vllm_router and vllm-project's Rust router use).
import { PdsError } from '../../util/errors.js';
import type { RoutingPolicy } from './policy.js';
import { RoundRobinPolicy } from './roundrobin.js';
import { SessionPolicy } from './session.js';
import { LeastLoadPolicy } from './least-load.js';
import { PowerOfTwoPolicy } from './power-of-two.js';
import { PrefixAwarePolicy } from './prefix-aware.js';
import { KvAwarePolicy } from './kv-aware.js';
import type { KvIndex } from './kv-index.js';

export interface PolicyOptions {
  sessionKey?: string; // header for 'session'
  blockSize?: number; // for 'prefixaware'
  kvIndex?: KvIndex; // for 'kvaware': the index the router's KV-event feed fills (a fresh empty one if absent)
}

export const policyNames = ['roundrobin', 'session', 'least-load', 'power-of-two', 'prefixaware', 'kvaware'] as const;
export type PolicyName = (typeof policyNames)[number];

const aliases: Record<string, PolicyName> = {
  round_robin: 'roundrobin',
  'round-robin': 'roundrobin',
  least_load: 'least-load',
  power_of_two: 'power-of-two',
  cache_aware: 'prefixaware',
  'cache-aware': 'prefixaware',
  prefix_aware: 'prefixaware',
  kv_aware: 'kvaware',
  'kv-aware': 'kvaware',
};

export function createPolicy(name: string, opts: PolicyOptions = {}): RoutingPolicy {
  const n = (aliases[name] ?? name) as PolicyName;
  switch (n) {
    case 'roundrobin':
      return new RoundRobinPolicy();
    case 'session':
      if (!opts.sessionKey) throw new PdsError('PDS_ERR_CONFIG', 'the session policy needs --session-key (a request header name)');
      return new SessionPolicy(opts.sessionKey);
    case 'least-load':
      return new LeastLoadPolicy();
    case 'power-of-two':
      return new PowerOfTwoPolicy();
    case 'prefixaware':
      return new PrefixAwarePolicy(opts.blockSize);
    case 'kvaware':
      return new KvAwarePolicy(opts.kvIndex);
    default:
      throw new PdsError('PDS_ERR_CONFIG', `unknown routing policy '${name}' (one of ${policyNames.join(', ')})`);
  }
}
