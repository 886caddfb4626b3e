// The kv-server's configuration: one type, defaults and derived values computed once (resolveOptions).
// Per-connection limits bound what any one client (even an authenticated one) can hold or cost.
import { DEFAULT_MAX_PAYLOAD, PAGE_SIZE } from './protocol.js';
import { MAX_SEGMENT_BYTES } from './pool-segments.js';

export const MAX_POOL_BYTES = 2 ** 40;

export interface KvServerOptions {
  host: string;
  port: number; // 0 = any free port
  poolSize: number; // bytes, including the header page
  /** Segment 0 of the pool; segment i is `${poolFile}.${i}`. Default: `pool` in a fresh private (0700)
   *  directory /dev/shm/pdserve-kv-XXXXXX, removed at stop. */
  poolFile?: string;
  /** The internal secret (32 bytes): every connection must prove it (kv-auth.ts). null = no secret:
   *  loopback only, loudly warned. */
  secret?: Buffer | null;
  /** Bytes per pool file (default and maximum 4 GiB); the largest chunk must fit one segment. */
  segmentSize?: number;
  /** Largest PUT payload (a chunk moved over TCP). */
  maxPayload?: number;
  /** A closed connection's uncommitted allocations are freed after this long (ms), so a late write by a
   *  client that lost its connection mid-gather never lands in a page given to someone else. */
  allocQuarantineMs?: number;
  /** Touch every page at start so first writes do not page-fault. */
  prefault?: boolean;
  quiet?: boolean;
  /** Open connections at most (authenticated or not); more are closed at accept. */
  maxConnections?: number;
  /** Connections still in the handshake at most (so unauthenticated ones cannot take every slot). */
  maxUnauthenticated?: number;
  /** A connection that has not completed HELLO + AUTH in this long is closed (ms). */
  authTimeoutMs?: number;
  /** A frame started but not complete after this long closes its connection; so does a client that does
   *  not read its replies (queued past maxInFlightBytes) for this long (ms). */
  frameTimeoutMs?: number;
  /** A connection that sends nothing for this long is closed (ms; 0 = never). Clients PING within it. */
  idleTimeoutMs?: number;
  /** Reply bytes queued for one connection before the server stops reading its requests. */
  maxInFlightBytes?: number;
  /** Uncommitted allocations of one connection: count and bytes (so ALLOCs cannot evict everyone). */
  maxUncommitted?: number;
  /** Default: half the pool (all of a pool up to 256 MiB). */
  maxUncommittedBytes?: number;
  /** Pins one connection may hold. */
  maxPins?: number;
}

export type ResolvedKvServerOptions = Required<Omit<KvServerOptions, 'secret'>> & { secret: Buffer | null };

export const KV_SERVER_DEFAULTS = {
  segmentSize: MAX_SEGMENT_BYTES,
  maxPayload: DEFAULT_MAX_PAYLOAD,
  allocQuarantineMs: 2000,
  maxConnections: 256,
  maxUnauthenticated: 32,
  authTimeoutMs: 5000,
  frameTimeoutMs: 30_000,
  idleTimeoutMs: 300_000,
  maxInFlightBytes: 64 * 2 ** 20,
  maxUncommitted: 4096,
  maxPins: 65_536,
} as const;

/** Defaults and checks; poolFile stays '' when the server is to make its private directory. */
export function resolveOptions(o: KvServerOptions): ResolvedKvServerOptions {
  const poolSize = Math.floor(o.poolSize / PAGE_SIZE) * PAGE_SIZE;
  if (!(poolSize >= 2 * PAGE_SIZE)) throw new RangeError(`pool size must be at least ${2 * PAGE_SIZE} bytes`);
  if (poolSize > MAX_POOL_BYTES) throw new RangeError(`pool size above 1T is not supported`);
  const r: ResolvedKvServerOptions = {
    ...KV_SERVER_DEFAULTS,
    maxUncommittedBytes: Math.max(Math.floor(poolSize / 2), Math.min(poolSize, 256 * 2 ** 20)),
    prefault: false,
    quiet: false,
    ...stripUndefined(o),
    host: o.host,
    port: o.port,
    poolSize,
    poolFile: o.poolFile ?? '',
    secret: o.secret ?? null,
  };
  for (const k of ['maxConnections', 'maxUnauthenticated', 'authTimeoutMs', 'frameTimeoutMs', 'maxInFlightBytes', 'maxUncommitted', 'maxUncommittedBytes', 'maxPins'] as const)
    if (!Number.isFinite(r[k]) || r[k] <= 0) throw new RangeError(`kv-server option ${k} must be > 0, got ${r[k]}`);
  if (!Number.isFinite(r.idleTimeoutMs) || r.idleTimeoutMs < 0) throw new RangeError(`kv-server option idleTimeoutMs must be >= 0`);
  if (r.secret && r.secret.length < 16) throw new RangeError('kv-server secret must be at least 16 bytes');
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** 127.0.0.0/8, ::1, localhost (and IPv4-mapped loopback). */
export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.toLowerCase().replace(/^::ffff:/, '');
  return a === 'localhost' || a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}
