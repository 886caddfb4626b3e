// Applies a discovered engine list (k8s-discovery.ts) to the router's pools: roles by config.ts poolsOf
// (labels for disaggregated_prefill, every engine decodes otherwise); kept engines keep their health,
// stats and breaker; new ones get the router's per-engine state; removed ones drain and close.
import type { ProxyState } from '../gateway/state.js';
import type { Upstream } from '../gateway/upstream.js';
import type { UpstreamSet } from '../gateway/upstream-set.js';
import { poolsOf, type Backend, type RouterConfig } from './config.js';

export function applyDiscovered(st: ProxyState, rc: RouterConfig, backends: Backend[], init: (u: Upstream) => void): void {
  rc.backends = backends;
  const pools = poolsOf(rc);
  const sync = (set: UpstreamSet, bs: Backend[]) => {
    const { added } = set.replace(bs.map((b) => b.url));
    for (const u of set.all) {
      const b = bs.find((x) => x.url === u.origin)!;
      u.label = b.label;
      if (b.model && !u.models.length) u.models = [b.model];
    }
    for (const u of added) init(u);
  };
  sync(st.prefillers, pools.prefill);
  sync(st.decoders, pools.decode);
  st.config.prefillers = st.prefillers.all.map((u) => u.origin);
  st.config.decoders = st.decoders.all.map((u) => u.origin);
}
