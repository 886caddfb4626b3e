// `pdserve up` and KV events: when the front is `pdserve router` with a kvaware pool (--router kvaware,
// or --prefill-policy/--decode-policy kvaware in --proxy-flags), or when the engine arguments carry a
// --kv-events-config, every engine gets its own --kv-events-config: the user's fields (if any), events
// on, its own loopback PUB endpoint (and replay endpoint when the user asked for replay), and the
// router gets --kv-events-endpoints in its backends' order (prefillers, then decoders) and the topic.
// Pure functions; up's launcher supplies the ports (two per engine: PUB, replay).
import { PdsError } from '../util/errors.js';

export interface KvEventsPlan {
  engineArgs: string[]; // the engine arguments without the user's --kv-events-config
  perEngine: (i: number, ports: [pub: number, replay: number]) => string[]; // that engine's --kv-events-config
  routerArgs: (ports: [number, number][]) => string[];
}

/** null: no engine publishes KV events (nothing to change). */
export function kvEventsPlan(router: string | null | undefined, proxyArgs: string[], engineArgs: string[]): KvEventsPlan | null {
  const rest: string[] = [];
  let userText: string | null = null;
  for (let i = 0; i < engineArgs.length; i++) {
    const a = engineArgs[i]!;
    if (a === '--kv-events-config') userText = engineArgs[++i] ?? '';
    else if (a.startsWith('--kv-events-config=')) userText = a.slice('--kv-events-config='.length);
    else rest.push(a);
  }
  const policyKv = proxyArgs.some((a, i) => (a === '--prefill-policy' || a === '--decode-policy') && proxyArgs[i + 1] === 'kvaware') ||
    proxyArgs.some((a) => a === '--prefill-policy=kvaware' || a === '--decode-policy=kvaware');
  const wanted = !!router && (router === 'kvaware' || policyKv);
  if (!wanted && userText === null) return null;
  let user: Record<string, unknown> = {};
  if (userText !== null) {
    try {
      user = JSON.parse(userText) as Record<string, unknown>;
    } catch (e) {
      throw new PdsError('PDS_ERR_CONFIG', `--kv-events-config is not JSON: ${(e as Error).message}`);
    }
    if (!user || typeof user !== 'object' || Array.isArray(user)) throw new PdsError('PDS_ERR_CONFIG', '--kv-events-config must be a JSON object');
  }
  const enabled = wanted || user.enable_kv_cache_events === true;
  const topic = typeof user.topic === 'string' ? user.topic : '';
  const replay = user.replay_endpoint !== undefined && user.replay_endpoint !== null;
  return {
    engineArgs: rest,
    perEngine: (_i, [pub, rp]) => ['--kv-events-config', JSON.stringify({
      ...user, enable_kv_cache_events: enabled, publisher: user.publisher ?? 'zmq',
      endpoint: `tcp://127.0.0.1:${pub}`, ...(replay ? { replay_endpoint: `tcp://127.0.0.1:${rp}` } : {}),
    })],
    routerArgs: (ports) => (router && enabled ? ['--kv-events-endpoints', ports.map(([p]) => `tcp://127.0.0.1:${p}`).join(','), ...(topic ? ['--kv-events-topic', topic] : [])] : []),
  };
}
