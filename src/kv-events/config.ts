// --kv-events-config: vLLM's KVEventsConfig fields (vllm/config/kv_events.py), validated once.
//   {"enable_kv_cache_events": true, "publisher": "zmq", "endpoint": "tcp://127.0.0.1:5557",
//    "replay_endpoint": null, "topic": "", "buffer_steps": 10000, "hwm": 100000, "max_queue_size": 100000}
// Differences from vLLM, on purpose: the default endpoint is loopback (vLLM's is tcp://*:5557, every
// interface); publisher "null" (vLLM's name for off) is accepted too.
import { PdsError } from '../util/errors.js';

export interface KvEventsConfig {
  enableKvCacheEvents: boolean;
  publisher: 'zmq' | 'null';
  endpoint: string; // PUB socket: bound when the host is a wildcard or loopback address, else connected (vLLM's rule)
  replayEndpoint: string | null; // ROUTER socket for replay requests (8-byte big-endian start seq)
  topic: string;
  bufferSteps: number; // batches kept for replay
  hwm: number; // ZeroMQ send high-water mark (messages)
  maxQueueSize: number; // batches waiting for the socket; beyond this the oldest is dropped and counted
}

export const DEFAULT_KV_EVENTS_ENDPOINT = 'tcp://127.0.0.1:5557';

export const defaultKvEventsConfig: KvEventsConfig = {
  enableKvCacheEvents: false,
  publisher: 'zmq',
  endpoint: DEFAULT_KV_EVENTS_ENDPOINT,
  replayEndpoint: null,
  topic: '',
  bufferSteps: 10_000,
  hwm: 100_000,
  maxQueueSize: 100_000,
};

const ENDPOINT = /^(tcp:\/\/(\*|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}|ipc:\/\/[^\0]{1,100}|inproc:\/\/[A-Za-z0-9_.-]{1,100})$/;

function endpoint(v: unknown, field: string): string {
  if (typeof v !== 'string' || !ENDPOINT.test(v)) throw new PdsError('PDS_ERR_CONFIG', `--kv-events-config ${field} must be tcp://HOST:PORT, ipc://PATH or inproc://NAME (got ${JSON.stringify(v)})`);
  return v;
}

function posInt(v: unknown, field: string, max: number): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) throw new PdsError('PDS_ERR_CONFIG', `--kv-events-config ${field} must be an integer in [1, ${max}]`);
  return v as number;
}

/** The flag's JSON text -> config. Unknown fields are refused (a typo must not silently disable events). */
export function parseKvEventsConfig(text: string): KvEventsConfig {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new PdsError('PDS_ERR_CONFIG', `--kv-events-config is not JSON: ${(e as Error).message}`);
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) throw new PdsError('PDS_ERR_CONFIG', '--kv-events-config must be a JSON object');
  const o = j as Record<string, unknown>;
  const known = ['enable_kv_cache_events', 'publisher', 'endpoint', 'replay_endpoint', 'topic', 'buffer_steps', 'hwm', 'max_queue_size'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new PdsError('PDS_ERR_CONFIG', `--kv-events-config: unknown field '${k}' (known: ${known.join(', ')})`);
  const c: KvEventsConfig = { ...defaultKvEventsConfig };
  if (o.enable_kv_cache_events !== undefined) {
    if (typeof o.enable_kv_cache_events !== 'boolean') throw new PdsError('PDS_ERR_CONFIG', '--kv-events-config enable_kv_cache_events must be true or false');
    c.enableKvCacheEvents = o.enable_kv_cache_events;
  }
  if (o.publisher !== undefined) {
    if (o.publisher !== 'zmq' && o.publisher !== 'null') throw new PdsError('PDS_ERR_CONFIG', `--kv-events-config publisher must be "zmq" or "null"`);
    c.publisher = o.publisher;
  }
  if (o.endpoint !== undefined) c.endpoint = endpoint(o.endpoint, 'endpoint');
  if (o.replay_endpoint !== undefined && o.replay_endpoint !== null) c.replayEndpoint = endpoint(o.replay_endpoint, 'replay_endpoint');
  if (o.topic !== undefined) {
    if (typeof o.topic !== 'string' || o.topic.length > 256) throw new PdsError('PDS_ERR_CONFIG', '--kv-events-config topic must be a string of at most 256 characters');
    c.topic = o.topic;
  }
  if (o.buffer_steps !== undefined) c.bufferSteps = posInt(o.buffer_steps, 'buffer_steps', 10_000_000);
  if (o.hwm !== undefined) c.hwm = posInt(o.hwm, 'hwm', 100_000_000);
  if (o.max_queue_size !== undefined) c.maxQueueSize = posInt(o.max_queue_size, 'max_queue_size', 100_000_000);
  return c;
}

/** vLLM's heuristic: bind a wildcard, ipc or inproc endpoint, connect to others. pdserve also binds a
 *  loopback host (its default), since a collector on the same host would otherwise have to bind. */
export function bindsEndpoint(ep: string): boolean {
  if (!ep.startsWith('tcp://')) return true;
  const host = ep.slice(6, ep.lastIndexOf(':'));
  return host === '*' || host === '[::]' || host === '0.0.0.0' || host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** True for an endpoint bound on every interface (the caller warns: events carry prompt token ids). */
export function isWildcard(ep: string): boolean {
  const host = ep.startsWith('tcp://') ? ep.slice(6, ep.lastIndexOf(':')) : '';
  return host === '*' || host === '[::]' || host === '0.0.0.0';
}
