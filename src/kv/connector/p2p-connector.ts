// P2pConnector: point-to-point KV transfer between a prefiller and a decoder on one host (NIXL style,
// transfer_channel: cuda_ipc). Wraps a PdConnector (the pool path), which serves every request the
// point-to-point path does not take.
//
// Producer (request with kv_transfer_params.do_remote_decode, a KV cache that exports a peer handle, and a
// known HTTP endpoint): nothing is saved; requestFinished holds the blocks (delayFree) and returns
//   {do_remote_decode: false, do_remote_prefill: true, remote_engine_id, remote_block_ids, remote_host,
//    remote_port, remote_ipc_handle (base64), tp_size: 1}
// which the engine sends out at once with the final output. The blocks are freed (doneSending) when the
// decoder POSTs /v1/kv/release {request_id} (release()), or after releaseTimeoutMs with a warning.
// Consumer (request with do_remote_prefill + remote_ipc_handle, a KV cache that copies from peers):
// getNumNewMatchedTokens = prompt length - 1 - computed (whole blocks are copied; the last token is
// recomputed for its logits), async; the load copies remote_block_ids[i] -> local block i in one batched
// call, then releases the producer's blocks. A failed copy marks the blocks as load errors (the engine
// recomputes). A KV cache without peer copy (cpu) hands the request to the pool path.
import { randomUUID } from 'node:crypto';
import { FinishedReport } from './finished-report.js';
import type { ConnectorMetadata, ConnectorRequest, ConnectorRoute, ConnectorServing, KvCacheAccess, KvConnector, KvRole, MatchResult } from '../../engine/connector/base.js';
import type { KvTransferParams } from '../../engine/connector/types.js';
import { getLogger, type Logger } from '../../util/logger.js';
import type { KvConfig } from '../config.js';
import { lookupLine, retrievedPeerLine } from './layout.js';
import { kvReleaseRoute } from './release-route.js';
import { AUTH_REPLY_HEADER, checkReplyProof, signRequest } from '../../security/request-signing.js';

export const P2P_CHANNEL = 'cuda_ipc';
/** Held producer blocks are freed after blocking_timeout_secs times this when no release comes. */
export const RELEASE_TIMEOUT_FACTOR = 3;

/** Tells a producer that its blocks for requestId may be freed (default: POST http://host:port/v1/kv/release). */
export type SendRelease = (host: string, port: number, requestId: string) => Promise<void>;

/**
 * POST http://host:port/v1/kv/release, signed with the internal secret; the producer's reply must carry
 * the matching proof (a listener without the secret cannot pose as the producer). No secret: refused.
 */
export function signedHttpRelease(key: Buffer | null): SendRelease {
  return async (host, port, requestId) => {
    if (!key) throw new Error('no internal secret is configured: cannot sign the release');
    const body = JSON.stringify({ request_id: requestId });
    const auth = signRequest(key, 'POST', '/v1/kv/release', body);
    const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/v1/kv/release`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body,
      signal: AbortSignal.timeout(5000),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`release returned HTTP ${res.status}`);
    if (!checkReplyProof(key, auth, res.headers.get(AUTH_REPLY_HEADER))) throw new Error('the peer did not prove it holds the internal secret');
  };
}

/** Loopback names: CUDA IPC peers share this host, so by default only they are contacted. */
const isLoopbackHost = (h: string) => h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);

interface RemoteSource {
  engineId: string;
  host: string;
  port: number;
  handle: Uint8Array;
  blockIds: number[];
}

interface PendingLoad {
  src: RemoteSource;
  numComputed: number;
  count: number;
  released: boolean;
}

export interface P2pOptions {
  engineId?: string;
  sendRelease?: SendRelease;
  releaseTimeoutMs?: number;
  log?: Logger;
}

/** The remote source named by a consumer request's params, or null when they do not describe one. */
export function remoteSourceOf(p: KvTransferParams | undefined): RemoteSource | null {
  if (!p || p.do_remote_prefill !== true) return null;
  const { remote_engine_id: eid, remote_host: host, remote_port: port, remote_ipc_handle: h, remote_block_ids: ids } = p;
  if (typeof eid !== 'string' || typeof host !== 'string' || typeof h !== 'string' || !h) return null;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  if (!Array.isArray(ids) || !ids.every((b) => Number.isInteger(b) && (b as number) >= 0)) return null;
  return { engineId: eid, host, port, handle: Buffer.from(h, 'base64'), blockIds: ids as number[] };
}

export class P2pConnector implements KvConnector {
  readonly engineId: string;
  private kv: KvCacheAccess | null = null;
  private handleB64: string | null = null;
  private endpoint: { host: string; port: number } | null = null;
  private sendRelease: SendRelease;
  private readonly customRelease: boolean;
  /** "host:port" peers this consumer may contact; null = any loopback host */
  private peerAllowlist: Set<string> | null = null;
  private readonly releaseTimeoutMs: number;
  private readonly log: Logger;
  /** producer: held requests and their timeout timers */
  private readonly held = new Map<string, NodeJS.Timeout>();
  /** consumer: requests that take the peer path */
  private readonly pending = new Map<string, PendingLoad>();
  private readonly queued: Array<{ requestId: string; total: number; start: number; end: number; blockIds: number[] }> = [];
  private readonly loading = new Map<string, Promise<void>>();
  private readonly finishedWhileLoading = new Set<string>();
  private readonly releases = new Set<Promise<void>>();
  private readonly report = new FinishedReport();
  readonly counters = { heldRequests: 0, releasedByPeer: 0, releasedByTimeout: 0, peerLoads: 0, peerLoadedTokens: 0, failedPeerLoads: 0 };

  stats(): Record<string, number> {
    return { ...(this.inner.stats?.() ?? {}), ...this.counters };
  }

  constructor(
    readonly role: KvRole,
    private readonly config: KvConfig,
    /** The pool path: requests the peer path does not take. */
    readonly inner: KvConnector,
    opts: P2pOptions = {},
  ) {
    this.engineId = opts.engineId ?? randomUUID();
    this.customRelease = opts.sendRelease !== undefined;
    this.sendRelease = opts.sendRelease ?? signedHttpRelease(null);
    this.releaseTimeoutMs = opts.releaseTimeoutMs ?? config.blocking_timeout_secs * 1000 * RELEASE_TIMEOUT_FACTOR;
    this.log = opts.log ?? getLogger('kv');
  }

  /** Serving-process seam: peer auth from the server's settings; the route decoders call (/v1/kv/release). */
  attachServer(s: ConnectorServing): ConnectorRoute[] {
    this.setPeerAuth(s.internalKey, s.peerAllowlist.length ? [...s.peerAllowlist] : null);
    if (!s.internalKey) this.log.warn('point-to-point KV needs --internal-secret-file: without it kv_transfer_params are ignored and /v1/kv/release is refused');
    return [kvReleaseRoute(this)];
  }

  serverListening(host: string, port: number): void {
    this.setEndpoint(host, port);
  }

  /** Where decoders reach this engine's /v1/kv/release (set once the API server listens). */
  setEndpoint(host: string, port: number): void {
    this.endpoint = { host: host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host, port };
  }

  /**
   * Consumer: releases are signed with `key` (and the reply proof checked); only peers in `allowlist`
   * ("host:port" list; null = loopback hosts) are ever contacted. Params naming another peer are ignored.
   */
  setPeerAuth(key: Buffer | null, allowlist: string[] | null): void {
    if (!this.customRelease) this.sendRelease = signedHttpRelease(key);
    this.peerAllowlist = allowlist ? new Set(allowlist.map((a) => a.trim().toLowerCase())) : null;
  }

  private peerAllowed(src: RemoteSource): boolean {
    const host = src.host.toLowerCase();
    if (this.peerAllowlist) return this.peerAllowlist.has(`${host.includes(':') ? `[${host}]` : host}:${src.port}`);
    return isLoopbackHost(host);
  }

  /** An aborted prefill is not held: no decoder will get its params. */
  private producesP2p(req: ConnectorRequest): boolean {
    return (
      this.role !== 'kv_consumer' && req.kvTransferParams?.do_remote_decode === true && req.finishReason !== 'abort' && this.handleB64 !== null && this.endpoint !== null
    );
  }

  // ---------------- scheduler side ----------------

  getNumNewMatchedTokens(req: ConnectorRequest, numComputedTokens: number): MatchResult {
    let src = this.role !== 'kv_producer' ? remoteSourceOf(req.kvTransferParams) : null;
    if (src && !this.peerAllowed(src)) {
      this.log.warn(`Reqid: ${req.requestId}: kv_transfer_params name peer ${src.host}:${src.port}, which is not allowlisted; ignoring them`);
      src = null;
    }
    if (!src) return this.inner.getNumNewMatchedTokens(req, numComputedTokens);
    if (!this.kv?.copyFromPeer) {
      // no peer copy here: free the producer's blocks now, take the pool path
      this.release(req.requestId, src, 'this device has no peer transfer; using the pool path');
      return this.inner.getNumNewMatchedTokens(req, numComputedTokens);
    }
    const total = req.promptTokenIds.length;
    const bs = this.kv.blockSize;
    let hit = Math.min(total - 1, src.blockIds.length * bs);
    if (hit < this.config.min_retrieve_tokens) hit = 0;
    const count = Math.max(0, hit - numComputedTokens);
    let p = this.pending.get(req.requestId);
    if (!p) {
      p = { src, numComputed: numComputedTokens, count, released: false };
      this.pending.set(req.requestId, p);
      this.log.info(lookupLine(req.requestId, total, numComputedTokens, hit, count));
    }
    p.numComputed = numComputedTokens;
    p.count = count;
    if (count === 0 || numComputedTokens % bs !== 0) {
      this.pending.delete(req.requestId);
      this.releaseOnce(req.requestId, p);
      return { count: 0 };
    }
    return { count };
  }

  updateStateAfterAlloc(req: ConnectorRequest, blockIds: readonly number[], numExternalTokens: number): void {
    const p = this.pending.get(req.requestId);
    if (!p) return this.inner.updateStateAfterAlloc(req, blockIds, numExternalTokens);
    if (numExternalTokens <= 0) {
      this.pending.delete(req.requestId);
      this.releaseOnce(req.requestId, p);
      return;
    }
    this.queued.push({ requestId: req.requestId, total: req.promptTokenIds.length, start: p.numComputed, end: p.numComputed + numExternalTokens, blockIds: [...blockIds] });
  }

  buildConnectorMeta(step: { scheduled: Array<{ req: ConnectorRequest; numNewTokens: number; isPrefillDone: boolean }> }): ConnectorMetadata {
    // requests whose KV goes point to point are not saved to the tiers
    return this.inner.buildConnectorMeta({ scheduled: step.scheduled.filter((s) => !this.producesP2p(s.req)) });
  }

  requestFinished(req: ConnectorRequest, blockIds: readonly number[]): { delayFree: boolean; kvTransferParams?: KvTransferParams } {
    const id = req.requestId;
    if (this.loading.has(id)) {
      this.finishedWhileLoading.add(id);
      return { delayFree: true };
    }
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      this.releaseOnce(id, p);
    }
    if (!blockIds.length || !this.producesP2p(req)) return this.inner.requestFinished(req, blockIds); // no blocks: nothing to hold for a peer
    if (this.held.has(id)) return { delayFree: true };
    const timer = setTimeout(() => {
      if (!this.held.delete(id)) return;
      this.counters.releasedByTimeout++;
      this.log.warn(`Reqid: ${id}: no KV release from the decoder within ${(this.releaseTimeoutMs / 1000).toFixed(1)} s; freeing its blocks`);
      this.report.sent(id);
    }, this.releaseTimeoutMs);
    timer.unref();
    this.held.set(id, timer);
    this.counters.heldRequests++;
    return {
      delayFree: true,
      kvTransferParams: {
        do_remote_decode: false,
        do_remote_prefill: true,
        remote_engine_id: this.engineId,
        remote_block_ids: [...blockIds],
        remote_host: this.endpoint!.host,
        remote_port: this.endpoint!.port,
        remote_ipc_handle: this.handleB64!,
        tp_size: 1,
      },
    };
  }

  /** Producer: the decoder has copied requestId's blocks (POST /v1/kv/release). False when none are held. */
  releaseHeld(requestId: string): boolean {
    const t = this.held.get(requestId);
    if (!t) return false;
    clearTimeout(t);
    this.held.delete(requestId);
    this.counters.releasedByPeer++;
    this.report.sent(requestId);
    return true;
  }

  get heldCount(): number {
    return this.held.size;
  }

  private releaseOnce(requestId: string, p: PendingLoad): void {
    if (p.released) return;
    p.released = true;
    this.release(requestId, p.src);
  }

  private release(requestId: string, src: RemoteSource, why?: string): void {
    if (why) this.log.info(`Reqid: ${requestId}: ${why}`);
    const r = this.sendRelease(src.host, src.port, requestId)
      .catch((e) => this.log.warn(`Reqid: ${requestId}: KV release to ${src.host}:${src.port} failed: ${(e as Error).message} (the prefiller frees on its timeout)`))
      .finally(() => this.releases.delete(r));
    this.releases.add(r);
  }

  // ---------------- worker side ----------------

  registerKvCache(kv: KvCacheAccess): void {
    this.inner.registerKvCache(kv);
    this.kv = kv;
    if (this.role !== 'kv_consumer' && kv.exportPeerHandle) {
      try {
        this.handleB64 = Buffer.from(kv.exportPeerHandle()).toString('base64');
      } catch (e) {
        this.log.warn(`KV peer transfer unavailable (${(e as Error).message}); using the pool path`);
      }
    }
  }

  startLoadKv(meta: ConnectorMetadata): void {
    for (const q of this.queued.splice(0)) this.startLoad(q);
    this.inner.startLoadKv(meta);
  }

  private startLoad(q: { requestId: string; total: number; start: number; end: number; blockIds: number[] }): void {
    const p = this.pending.get(q.requestId);
    this.pending.delete(q.requestId);
    const kv = this.kv!;
    const bs = kv.blockSize;
    const first = q.start / bs;
    const last = Math.ceil(q.end / bs);
    const t0 = performance.now();
    const done = (async () => {
      if (!p) throw new Error('no peer source');
      if (last > p.src.blockIds.length || last > q.blockIds.length) throw new Error(`tokens up to ${q.end} need ${last} blocks; the peer sent ${p.src.blockIds.length}`);
      const src = Int32Array.from(p.src.blockIds.slice(first, last));
      const dst = Int32Array.from(q.blockIds.slice(first, last));
      await kv.copyFromPeer!(p.src.handle, src, dst);
      const ms = performance.now() - t0;
      const n = q.end - q.start;
      this.counters.peerLoads++;
      this.counters.peerLoadedTokens += n;
      this.log.info(retrievedPeerLine(n, n, q.total, (last - first) * bs * kv.bytesPerToken, ms, P2P_CHANNEL));
    })()
      .catch((e) => {
        this.counters.failedPeerLoads++;
        for (let b = first; b < last; b++) if (q.blockIds[b] !== undefined) this.report.loadError(q.blockIds[b]!);
        this.log.warn(`Reqid: ${q.requestId}: GPU→GPU KV copy failed (${(e as Error).message}); the engine recomputes the prompt`);
      })
      .finally(() => {
        if (p) this.releaseOnce(q.requestId, p);
        this.loading.delete(q.requestId);
        this.report.received(q.requestId);
        if (this.finishedWhileLoading.delete(q.requestId)) this.report.sent(q.requestId);
      });
    this.loading.set(q.requestId, done);
  }

  waitForSave(): Promise<void> {
    return this.inner.waitForSave();
  }

  getFinished(): { doneSending: Set<string>; doneRecving: Set<string> } {
    const inner = this.inner.getFinished();
    const out = this.report.takeFinished();
    for (const id of inner.doneSending) out.doneSending.add(id);
    for (const id of inner.doneRecving) out.doneRecving.add(id);
    return out;
  }

  getBlockIdsWithLoadErrors(): Set<number> {
    const out = this.report.takeLoadErrors();
    for (const b of this.inner.getBlockIdsWithLoadErrors()) out.add(b);
    return out;
  }

  async shutdown(): Promise<void> {
    for (const t of this.held.values()) clearTimeout(t);
    this.held.clear();
    await Promise.all([...this.loading.values()]);
    await Promise.all([...this.releases]);
    await this.inner.shutdown();
  }
}
