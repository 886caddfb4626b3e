// The router's KV-event feed for kvaware pools: one KvEventSubscriber per engine (endpoint from
// --kv-events-endpoints by position, or tcp://<engine host>:--kv-events-port), all feeding one KvIndex.
// What an engine held is forgotten when it restarts (its sequence goes back), when it is ejected (health
// check or breaker) and when discovery removes it. sync() follows the engine list; call it after
// discovery changes and on a timer (it also notices ejections).
import { KvEventSubscriber, type SubscriberCounters } from '../kv-events/subscriber.js';
import { kvEventsCurve, type KvEventsCurve } from '../kv-events/curve.js';
import { KvIndex } from '../gateway/policies/kv-index.js';
import type { KvAwarePolicy } from '../gateway/policies/kv-aware.js';
import type { Upstream } from '../gateway/upstream.js';
import type { RouterConfig } from './config.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('router');

/** The KV-event endpoint of the engine at `origin`, or null when none is configured. */
export function eventEndpoint(rc: Pick<RouterConfig, 'backends' | 'kvEventsEndpoints' | 'kvEventsPort'>, origin: string): string | null {
  const i = rc.backends.findIndex((b) => b.url === origin);
  if (i >= 0 && rc.kvEventsEndpoints[i]) return rc.kvEventsEndpoints[i]!;
  if (rc.kvEventsPort === null) return null;
  const host = new URL(origin).hostname;
  return `tcp://${host === 'localhost' ? '127.0.0.1' : host}:${rc.kvEventsPort}`;
}

export interface FeedEngineStats extends SubscriberCounters {
  endpoint: string;
  blocks: number;
}

export class KvEventsFeed {
  readonly index = new KvIndex();
  private readonly subs = new Map<string, KvEventSubscriber>(); // origin -> subscriber
  private readonly down = new Set<string>(); // origins whose entries were dropped while ejected
  private lastMalformedLog = 0;
  private readonly warnedNoEndpoint = new Set<string>();
  /** engines' kvaware policies (their pending routes are dropped with the index entries) */
  readonly policies: KvAwarePolicy[] = [];

  private readonly curve: KvEventsCurve | null;

  constructor(private readonly rc: Pick<RouterConfig, 'backends' | 'kvEventsEndpoints' | 'kvEventsPort' | 'kvEventsTopic'> & Partial<Pick<RouterConfig, 'kvEventsPlaintext' | 'gateway'>>) {
    const key = rc.gateway?.internalKey ?? null;
    this.curve = key && !rc.kvEventsPlaintext ? kvEventsCurve(key) : null;
  }

  private forget(origin: string): void {
    this.index.clearEngine(origin);
    for (const p of this.policies) p.forget(origin);
  }

  /** Subscribes to new engines, drops removed ones, forgets ejected ones (until healthy again). */
  sync(engines: readonly Upstream[]): void {
    const live = new Set(engines.map((u) => u.origin));
    for (const [origin, sub] of this.subs) {
      if (live.has(origin)) continue;
      void sub.close();
      this.subs.delete(origin);
      this.down.delete(origin);
      this.forget(origin);
    }
    for (const u of engines) {
      if (!this.subs.has(u.origin)) {
        const endpoint = eventEndpoint(this.rc, u.origin);
        if (!endpoint) {
          if (!this.warnedNoEndpoint.has(u.origin)) {
            this.warnedNoEndpoint.add(u.origin);
            log.warn(`kvaware: no KV-event endpoint for ${u.origin} (set --kv-events-endpoints or --kv-events-port); it is ranked by load and recent routes only`);
          }
          continue;
        }
        const origin = u.origin;
        this.subs.set(origin, new KvEventSubscriber({
          endpoint,
          topic: this.rc.kvEventsTopic,
          curve: this.curve,
          onEvents: (evs) => {
            if (!this.down.has(origin)) this.index.apply(origin, evs);
          },
          onReset: () => this.forget(origin),
          onMalformed: (why) => {
            const now = Date.now();
            if (now - this.lastMalformedLog < 10_000) return;
            this.lastMalformedLog = now;
            log.warn(`KV events from ${origin} (${endpoint}): dropped a malformed message: ${why}`);
          },
        }));
        log.info(`kvaware: KV events of ${origin} from ${endpoint} (${this.curve ? 'CurveZMQ' : 'plaintext'})`);
      }
      const ejected = !u.healthy || u.breaker?.state === 'open';
      if (ejected && !this.down.has(u.origin)) {
        this.down.add(u.origin);
        this.forget(u.origin);
      } else if (!ejected) this.down.delete(u.origin);
    }
  }

  stats(): Record<string, FeedEngineStats> {
    const out: Record<string, FeedEngineStats> = {};
    for (const [origin, sub] of this.subs) out[origin] = { endpoint: sub.opts.endpoint, blocks: this.index.blocks(origin), ...sub.counters };
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.subs.values()].map((s) => s.close()));
    this.subs.clear();
  }
}
