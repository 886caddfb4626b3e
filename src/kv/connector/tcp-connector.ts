// TcpConnector: vLLM NixlConnector-style pull of KV blocks between engines on any hosts, over the tcp
// KV transport (src/kv/transport). Needs a KV cache whose host memory the transport can read and write
// in place (KvCacheAccess.hostRegion: the CPU backend; HostKvCache in tests).
//
// Producer (request with kv_transfer_params.do_remote_decode, not aborted, blocks to hold):
// requestFinished holds the blocks (delayFree) under a lease (leaseMs, default 30 s) and answers
//   {do_remote_prefill: true, do_remote_decode: false, remote_engine_id (the transport's instance id),
//    remote_request_id, remote_block_ids, remote_host, remote_port, tp_size: 1, remote_transport: 'tcp'}
// Only an authenticated peer may READ, and only blocks under that request's live lease. The lease ends
// (doneSending: the engine frees the blocks) on the decoder's 'done' or 'abort' notification or on expiry
// (a warning); heartbeats renew it.
// Consumer (request with do_remote_prefill from an allowlisted peer): getNumNewMatchedTokens = prompt
// length - 1 (the last token is recomputed for its logits; blocks move whole), async; heartbeats start
// at once (the request may queue) and stop when the load ends. The load READs remote_block_ids[i] into
// local block i, logs `Retrieved ... (P2P tcp)`, then notifies 'done'. Any failure (peer gone, timeout,
// refused, restarted peer, mismatch) notifies 'abort' (best effort) and marks the blocks as load
// errors: the engine recomputes them (kv_load_failure_policy recompute, the default); with 'fail' the
// request ends with a kv_load_failed error (503) instead (takeFailedLoads). Nothing waits past loadTimeoutMs.
// Push (kv_transfer_params.kv_mode 'push' + push_id, both legs sent at once by `proxy --kv-mode push`):
// the consumer allocates prompt length - 1 tokens' blocks and waits for the producer's writes
// (push-receiver.ts; the producer's API address in remote_host/remote_port must be allowlisted like a
// pull peer); the producer writes each step's completed blocks after the forward (push-sender.ts) and
// serves POST /v1/kv/push-target (push-target-route.ts). Every role's transport listens (consumers
// receive pushes). The same failure policy, timeouts and frees apply.
import type { ConnectorMetadata, ConnectorRequest, ConnectorRoute, ConnectorServing, KvCacheAccess, KvConnector, KvRole, MatchResult } from '../../engine/connector/base.js';
import { FinishedReport } from './finished-report.js';
import type { KvTransferParams } from '../../engine/connector/types.js';
import { PdsError } from '../../util/errors.js';
import { getLogger, type Logger } from '../../util/logger.js';
import { LeaseTable, DEFAULT_LEASE_MS } from '../transport/lease-table.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import type { KvIdentity, KvRegion, PeerAddress } from '../transport/transport.js';
import { lookupLine, retrievedLine } from './layout.js';
import { PushReceiver, type PushSource, type SendPushTarget } from './push-receiver.js';
import { PushSender, pushIdOf } from './push-sender.js';
import { pushTargetRoute, type PushTargetBody, type PushTargetReply } from './push-target-route.js';

export const TCP_CONNECTOR = 'TcpConnector';
export const DEFAULT_HEARTBEAT_MS = 5000;

export interface TcpConnectorOptions {
  /** the internal secret's key; peers without it are refused both ways */
  key: Buffer;
  /** model, kv dtype, layers, kv heads, head dim; blockSize comes from the KV cache */
  identity: Omit<KvIdentity, 'blockSize'>;
  host?: string; // bind (default 127.0.0.1)
  port?: number; // default 0 (vLLM's side channel port is 5600; any free port here unless set)
  advertiseHost?: string;
  advertisePort?: number;
  connections?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  loadTimeoutMs?: number;
  failurePolicy?: 'fail' | 'recompute';
  /** "host:port" transport endpoints this decoder may pull from; null = loopback hosts only */
  peerAllowlist?: string[] | null;
  minRetrieveTokens?: number;
  log?: Logger;
  /** push: how a decoder's target reaches the prefiller (default: signed POST /v1/kv/push-target; tests) */
  sendPushTarget?: SendPushTarget;
}

interface Source {
  peer: PeerAddress;
  remoteRequestId: string;
  blockIds: number[];
}

interface PushPending {
  src: PushSource;
  total: number;
  numComputed: number;
  count: number;
}

interface Pending {
  src: Source;
  total: number;
  numComputed: number;
  count: number;
  heartbeat: NodeJS.Timeout | null;
  ended: boolean;
}

const isLoopbackHost = (h: string) => h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);

/** The prefiller named by consumer params in push mode (kv_mode push), or null. */
export function pushSourceOf(p: KvTransferParams | undefined): PushSource | null {
  if (!p || p.do_remote_prefill !== true || p.kv_mode !== 'push') return null;
  const { remote_host: host, remote_port: port, push_id: id } = p;
  if (p.remote_transport !== undefined && p.remote_transport !== null && p.remote_transport !== 'tcp') return null;
  if (typeof host !== 'string' || !host || host.length > 255 || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  if (typeof id !== 'string' || !id || id.length > 128) return null;
  return { api: { host, port }, pushId: id };
}

/** The source named by consumer params, or null when they do not describe a tcp pull. */
export function tcpSourceOf(requestId: string, p: KvTransferParams | undefined): Source | null {
  if (!p || p.do_remote_prefill !== true || p.kv_mode === 'push') return null;
  const { remote_engine_id: eid, remote_host: host, remote_port: port, remote_block_ids: ids, remote_request_id: rid } = p;
  if (p.remote_transport !== undefined && p.remote_transport !== 'tcp') return null;
  if (typeof eid !== 'string' || !eid || eid.length > 128 || typeof host !== 'string' || !host || host.length > 255) return null;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  if (!Array.isArray(ids) || ids.length > 1 << 20 || !ids.every((b) => Number.isInteger(b) && (b as number) >= 0)) return null;
  const remoteRequestId = typeof rid === 'string' && rid.length > 0 && rid.length <= 256 ? rid : requestId;
  return { peer: { host, port, instanceId: eid }, remoteRequestId, blockIds: ids as number[] };
}

export class TcpConnector implements KvConnector {
  private kv: KvCacheAccess | null = null;
  private transport: TcpTransport | null = null;
  private endpoint: { host: string; port: number } | null = null;
  private listening: Promise<void> | null = null;
  private leases: LeaseTable | null = null;
  private allow: Set<string> | null;
  private readonly log: Logger;
  private readonly pending = new Map<string, Pending>();
  private readonly pushPending = new Map<string, PushPending>();
  private readonly queued: Array<{ requestId: string; start: number; end: number; blockIds: number[]; push?: PushPending }> = [];
  private readonly sender: PushSender;
  private readonly receiver: PushReceiver;
  private readonly loading = new Map<string, Promise<void>>();
  private readonly finishedWhileLoading = new Set<string>();
  private readonly notifies = new Set<Promise<unknown>>();
  private readonly report = new FinishedReport();
  readonly counters = { heldRequests: 0, releasedByPeer: 0, abortedByPeer: 0, expiredLeases: 0, peerLoads: 0, peerLoadedTokens: 0, failedPeerLoads: 0, heartbeats: 0 };

  constructor(
    readonly role: KvRole,
    private readonly o: TcpConnectorOptions,
  ) {
    this.allow = o.peerAllowlist ? new Set(o.peerAllowlist.map((a) => a.trim().toLowerCase())) : null;
    this.log = o.log ?? getLogger('kv');
    const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    this.sender = new PushSender({
      transport: () => this.transport,
      blockSize: () => this.kv?.blockSize ?? 1,
      leaseMs,
      writeTimeoutMs: o.loadTimeoutMs ?? 30_000,
      log: this.log,
      onFree: (id) => this.report.sent(id),
    });
    this.receiver = new PushReceiver({
      transport: () => this.transport,
      endpoint: () => this.endpoint,
      key: o.key,
      heartbeatMs: o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      timeoutMs: o.loadTimeoutMs ?? 30_000,
      log: this.log,
      sendTarget: o.sendPushTarget,
    });
  }

  /**
   * Serving-process seam: serve's --kv-peer-allowlist, and the producer's POST /v1/kv/push-target
   * (decoders in push mode say where a request's KV goes; leases and pulls travel on the transport).
   */
  attachServer(s: ConnectorServing): ConnectorRoute[] {
    this.addPeerAllowlist(s.peerAllowlist);
    return this.role === 'kv_consumer' ? [] : [pushTargetRoute(this)];
  }

  /** POST /v1/kv/push-target (push-target-route.ts). */
  acceptPushTarget(t: PushTargetBody): PushTargetReply {
    if (!this.transport || !this.endpoint) throw new PdsError('PDS_ERR_UNAVAILABLE', `${TCP_CONNECTOR}: this prefiller's tcp transport is not serving`);
    this.sender.accept(t);
    return { accepted: true, engine_id: this.transport.instanceId, host: this.endpoint.host, port: this.endpoint.port };
  }

  /** Adds "host:port" transport endpoints this decoder may pull from (serve's --kv-peer-allowlist). */
  addPeerAllowlist(list: readonly string[]): void {
    if (!list.length) return;
    this.allow ??= new Set();
    for (const a of list) this.allow.add(a.trim().toLowerCase());
  }

  stats(): Record<string, number> {
    return { ...this.counters, ...this.sender.counters, heldLeases: this.leases?.size ?? 0, pushesOut: this.sender.size, pushesIn: this.receiver.size };
  }

  /** Producer: resolves once the transport listens (its address is what params advertise). */
  ready(): Promise<void> {
    return this.listening ?? Promise.resolve();
  }

  /** The transport (tests, leak checks). */
  get tcp(): TcpTransport | null {
    return this.transport;
  }

  // ---------------- worker side: registration ----------------

  registerKvCache(kv: KvCacheAccess): void {
    this.kv = kv;
    const bytes = kv.hostRegion?.();
    if (!bytes) {
      this.log.warn(`${TCP_CONNECTOR}: this KV cache exposes no host memory (device KV cache); the tcp transfer is off, requests are computed locally`);
      return;
    }
    const id: KvIdentity = { ...this.o.identity, blockSize: kv.blockSize };
    const rowBytes = kv.bytesPerToken / (2 * id.numLayers);
    const numBlocks = bytes.byteLength / (kv.bytesPerToken * kv.blockSize);
    const region: KvRegion = { identity: id, layout: { numBlocks, blockSize: kv.blockSize, numLayers: id.numLayers, rowBytes }, bytes };
    const leases = new LeaseTable({
      ttlMs: this.o.leaseMs ?? DEFAULT_LEASE_MS,
      log: this.log,
      onFree: (req, _ids, end) => {
        if (end === 'done') this.counters.releasedByPeer++;
        else if (end === 'abort') this.counters.abortedByPeer++;
        else this.counters.expiredLeases++;
        this.report.sent(req);
      },
    });
    this.leases = leases;
    this.transport = new TcpTransport({
      key: this.o.key,
      host: this.o.host,
      port: this.o.port,
      advertiseHost: this.o.advertiseHost,
      advertisePort: this.o.advertisePort,
      connectionsPerPeer: this.o.connections,
      transferTimeoutMs: this.o.loadTimeoutMs,
      log: this.log,
      hooks: {
        // reads: pull leases (producer); writes: open push slots (consumer) only
        authorize: (op, req, ids) =>
          op === 'read' ? leases.covers(req, ids) : (this.receiver.authorizeWrite(req, ids) ?? `no KV push into this engine is open under ${req}`),
        writable: (req) => this.receiver.writable(req),
        onWritten: (req, ids) => this.receiver.onWritten(req, ids),
        onNotify: (kind, req) => this.receiver.onNotify(kind, req) ?? this.sender.onNotify(kind, req) ?? (kind === 'heartbeat' ? leases.renew(req) : leases.end(req, kind)),
      },
    });
    this.transport.registerRegion(region);
    // every role listens: producers serve pulls, consumers receive pushes
    if (this.role !== 'kv_consumer') {
      leases.start();
      this.sender.start();
    }
    this.listening = this.transport.listen().then(
      (a) => {
        this.endpoint = a;
        this.log.info(`${TCP_CONNECTOR}: serving KV blocks on ${a.host}:${a.port} (instance ${this.transport!.instanceId})`);
      },
      (e) => this.log.error(`${TCP_CONNECTOR}: cannot listen: ${(e as Error).message}; ${this.role === 'kv_consumer' ? 'pushes are refused' : 'prefills are not shared'}`),
    );
  }

  // ---------------- scheduler side ----------------

  private allowed(p: PeerAddress): boolean {
    const host = p.host.toLowerCase();
    if (this.allow) return this.allow.has(`${host.includes(':') ? `[${host}]` : host}:${p.port}`);
    return isLoopbackHost(host);
  }

  getNumNewMatchedTokens(req: ConnectorRequest, numComputedTokens: number): MatchResult {
    if (this.role === 'kv_producer' || !this.transport || !this.kv) return { count: 0 };
    if (req.kvTransferParams?.kv_mode === 'push') return this.matchPush(req, numComputedTokens);
    let p = this.pending.get(req.requestId);
    let fresh = false;
    if (!p) {
      const src = tcpSourceOf(req.requestId, req.kvTransferParams);
      if (!src) return { count: 0 };
      if (!this.allowed(src.peer)) {
        this.log.warn(`Reqid: ${req.requestId}: kv_transfer_params name KV peer ${src.peer.host}:${src.peer.port}, which is not allowlisted; ignoring them`);
        return { count: 0 };
      }
      p = { src, total: req.promptTokenIds.length, numComputed: numComputedTokens, count: 0, heartbeat: null, ended: false };
      this.pending.set(req.requestId, p);
      this.startHeartbeats(p);
      fresh = true;
    }
    const bs = this.kv.blockSize;
    // up to prompt length - 1; the last block is pulled whole, the engine recomputes what lies past hit
    let hit = Math.min(p.total - 1, p.src.blockIds.length * bs);
    if (hit < (this.o.minRetrieveTokens ?? 0)) hit = 0;
    p.numComputed = numComputedTokens;
    p.count = Math.max(0, hit - numComputedTokens);
    if (fresh) this.log.info(lookupLine(req.requestId, p.total, numComputedTokens, hit, p.count));
    if (p.count === 0 || numComputedTokens % bs !== 0) {
      // nothing to pull (a full local prefix hit): still tell the prefiller, which frees at once
      this.pending.delete(req.requestId);
      this.endRemote(req.requestId, p, 'done');
      return { count: 0 };
    }
    return { count: p.count };
  }

  /** Push: the decoder allocates prompt length - 1 tokens' blocks; the prefiller writes them. */
  private matchPush(req: ConnectorRequest, numComputedTokens: number): MatchResult {
    let p = this.pushPending.get(req.requestId);
    if (!p) {
      const src = pushSourceOf(req.kvTransferParams);
      if (!src) return { count: 0 };
      if (!this.allowed(src.api)) {
        this.log.warn(`Reqid: ${req.requestId}: kv_transfer_params name prefiller ${src.api.host}:${src.api.port}, which is not allowlisted; ignoring them`);
        return { count: 0 };
      }
      if (!this.endpoint) {
        this.log.warn(`Reqid: ${req.requestId}: KV push refused: this decoder's tcp transport is not listening; the prompt is computed here`);
        return { count: 0 };
      }
      p = { src, total: req.promptTokenIds.length, numComputed: numComputedTokens, count: 0 };
      this.pushPending.set(req.requestId, p);
      const hit0 = p.total - 1 >= (this.o.minRetrieveTokens ?? 0) ? p.total - 1 : 0;
      this.log.info(lookupLine(req.requestId, p.total, numComputedTokens, hit0, Math.max(0, hit0 - numComputedTokens)));
    }
    const bs = this.kv!.blockSize;
    let hit = p.total - 1;
    if (hit < (this.o.minRetrieveTokens ?? 0)) hit = 0;
    p.numComputed = numComputedTokens;
    p.count = Math.max(0, hit - numComputedTokens);
    if (p.count === 0 || numComputedTokens % bs !== 0) {
      // nothing to receive: an empty target lets the prefiller free at once
      this.pushPending.delete(req.requestId);
      void this.receiver.receive(req.requestId, p.src, 0, [], 0).catch(() => undefined);
      return { count: 0 };
    }
    return { count: p.count };
  }

  private startHeartbeats(p: Pending): void {
    const ms = this.o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    p.heartbeat = setInterval(() => {
      this.counters.heartbeats++;
      this.track(this.transport!.notify(p.src.peer, 'heartbeat', p.src.remoteRequestId, { timeoutMs: ms }).catch(() => undefined));
    }, ms);
    p.heartbeat.unref();
  }

  /** Stops heartbeats and sends done/abort once (best effort: the lease expires otherwise). */
  private endRemote(requestId: string, p: Pending, kind: 'done' | 'abort'): void {
    if (p.heartbeat) clearInterval(p.heartbeat);
    p.heartbeat = null;
    if (p.ended) return;
    p.ended = true;
    this.track(
      this.transport!.notify(p.src.peer, kind, p.src.remoteRequestId, { timeoutMs: 5000 }).catch((e) =>
        this.log.warn(`Reqid: ${requestId}: KV ${kind} notification to ${p.src.peer.host}:${p.src.peer.port} failed: ${(e as Error).message} (the prefiller frees at lease expiry)`),
      ),
    );
  }

  private track(x: Promise<unknown>): void {
    this.notifies.add(x);
    void x.finally(() => this.notifies.delete(x));
  }

  updateStateAfterAlloc(req: ConnectorRequest, blockIds: readonly number[], numExternalTokens: number): void {
    const pp = this.pushPending.get(req.requestId);
    if (pp) {
      this.pushPending.delete(req.requestId);
      if (numExternalTokens <= 0) void this.receiver.receive(req.requestId, pp.src, 0, [], 0).catch(() => undefined);
      else this.queued.push({ requestId: req.requestId, start: pp.numComputed, end: pp.numComputed + numExternalTokens, blockIds: [...blockIds], push: pp });
      return;
    }
    const p = this.pending.get(req.requestId);
    if (!p) return;
    if (numExternalTokens <= 0) {
      this.pending.delete(req.requestId);
      this.endRemote(req.requestId, p, 'done');
      return;
    }
    this.queued.push({ requestId: req.requestId, start: p.numComputed, end: p.numComputed + numExternalTokens, blockIds: [...blockIds] });
  }

  /** Producer, push mode: notes what each push request computes this step (written after the forward). */
  buildConnectorMeta(step?: { scheduled: Array<{ req: ConnectorRequest; numNewTokens: number; isPrefillDone: boolean }> }): ConnectorMetadata {
    if (this.role !== 'kv_consumer' && step)
      for (const { req, numNewTokens } of step.scheduled) {
        const id = pushIdOf(req);
        if (id !== null) this.sender.noteStep(req, id, numNewTokens);
      }
    return { loads: [], saves: [] };
  }

  requestFinished(req: ConnectorRequest, blockIds: readonly number[]): { delayFree: boolean; kvTransferParams?: KvTransferParams } {
    const id = req.requestId;
    if (this.loading.has(id)) {
      this.finishedWhileLoading.add(id);
      this.receiver.cancel(id); // a push slot closes now (no later write lands); a pull runs out its op
      return { delayFree: true };
    }
    const pp = this.pushPending.get(id);
    if (pp) {
      // aborted before its blocks were allocated: an empty target frees the prefiller's at once
      this.pushPending.delete(id);
      void this.receiver.receive(id, pp.src, 0, [], 0).catch(() => undefined);
    }
    const qp = this.queued.findIndex((q) => q.requestId === id && q.push);
    if (qp >= 0) {
      const q = this.queued.splice(qp, 1)[0]!;
      void this.receiver.receive(id, q.push!.src, 0, [], 0).catch(() => undefined);
    }
    const pushId = this.role !== 'kv_consumer' ? pushIdOf(req) : null;
    if (pushId !== null) {
      const hold = this.sender.finished(req, pushId, blockIds) && blockIds.length > 0;
      return hold ? { delayFree: true, kvTransferParams: { do_remote_decode: false, do_remote_prefill: true, kv_mode: 'push', push_id: pushId, remote_transport: 'tcp' } } : { delayFree: false };
    }
    const p = this.pending.get(id);
    if (p) {
      // finished (aborted) before its load started
      this.pending.delete(id);
      const qi = this.queued.findIndex((q) => q.requestId === id);
      if (qi >= 0) this.queued.splice(qi, 1);
      this.endRemote(id, p, 'abort');
    }
    const produce = this.role !== 'kv_consumer' && req.kvTransferParams?.do_remote_decode === true && req.finishReason !== 'abort' && this.endpoint && this.leases;
    if (!produce || !blockIds.length) return { delayFree: false };
    if (this.leases!.get(id)) return { delayFree: true };
    this.leases!.grant(id, blockIds);
    this.counters.heldRequests++;
    return {
      delayFree: true,
      kvTransferParams: {
        do_remote_decode: false,
        do_remote_prefill: true,
        remote_engine_id: this.transport!.instanceId,
        remote_request_id: id,
        remote_block_ids: [...blockIds],
        remote_host: this.endpoint!.host,
        remote_port: this.endpoint!.port,
        tp_size: 1,
        remote_transport: 'tcp',
      },
    };
  }

  /** Producer: blocks held for decoders now. */
  get heldCount(): number {
    return this.leases?.size ?? 0;
  }

  // ---------------- worker side ----------------

  startLoadKv(): void {
    for (const q of this.queued.splice(0)) {
      if (q.push) this.startPushLoad(q, q.push);
      else this.startLoad(q);
    }
  }

  /** Push: opens the slot, tells the prefiller where, waits for its last chunk (or a failure). */
  private startPushLoad(q: { requestId: string; start: number; end: number; blockIds: number[] }, p: PushPending): void {
    const kv = this.kv!;
    const bs = kv.blockSize;
    const first = q.start / bs;
    const last = Math.ceil(q.end / bs);
    const t0 = performance.now();
    let failure: string | null = null;
    const done = this.receiver
      .receive(q.requestId, p.src, first, q.blockIds.slice(first, last), q.end)
      .then(() => {
        const ms = performance.now() - t0;
        const n = q.end - q.start;
        this.counters.peerLoads++;
        this.counters.peerLoadedTokens += n;
        this.log.info(`${retrievedLine(n, n, p.total, (last - first) * bs * kv.bytesPerToken, ms)} (P2P tcp)`);
      })
      .catch((e) => {
        this.counters.failedPeerLoads++;
        failure = `KV push over tcp from ${p.src.api.host}:${p.src.api.port} failed (${(e as Error).message})`;
      })
      .finally(() => {
        this.loading.delete(q.requestId);
        if (failure !== null && !this.finishedWhileLoading.has(q.requestId)) this.loadFailed(q.requestId, failure, q.blockIds.slice(first, last));
        this.report.received(q.requestId);
        if (this.finishedWhileLoading.delete(q.requestId)) this.report.sent(q.requestId);
      });
    this.loading.set(q.requestId, done);
  }

  private startLoad(q: { requestId: string; start: number; end: number; blockIds: number[] }): void {
    const p = this.pending.get(q.requestId)!;
    this.pending.delete(q.requestId);
    const kv = this.kv!;
    const bs = kv.blockSize;
    const first = q.start / bs;
    const last = Math.ceil(q.end / bs);
    const t0 = performance.now();
    let ok = false;
    let failure: string | null = null;
    const done = (async () => {
      if (last > p.src.blockIds.length || last > q.blockIds.length) throw new Error(`tokens up to ${q.end} need ${last} blocks; the peer sent ${p.src.blockIds.length}`);
      const r = await this.transport!.read(p.src.peer, Int32Array.from(p.src.blockIds.slice(first, last)), Int32Array.from(q.blockIds.slice(first, last)), {
        requestId: p.src.remoteRequestId,
        timeoutMs: this.o.loadTimeoutMs,
      });
      const ms = performance.now() - t0;
      const n = q.end - q.start;
      this.counters.peerLoads++;
      this.counters.peerLoadedTokens += n;
      this.log.info(`${retrievedLine(n, n, p.total, r.bytes, ms)} (P2P tcp)`);
      ok = true;
    })()
      .catch((e) => {
        this.counters.failedPeerLoads++;
        failure = `KV pull over tcp from ${p.src.peer.host}:${p.src.peer.port} failed (${(e as Error).message})`;
      })
      .finally(() => {
        this.endRemote(q.requestId, p, ok ? 'done' : 'abort');
        this.loading.delete(q.requestId);
        if (failure !== null) this.loadFailed(q.requestId, failure, q.blockIds.slice(first, last));
        this.report.received(q.requestId);
        if (this.finishedWhileLoading.delete(q.requestId)) this.report.sent(q.requestId);
      });
    this.loading.set(q.requestId, done);
  }

  /** The engine aborted a request whose load runs: a push slot closes now (a pull runs out its op). */
  loadAborted(requestId: string): void {
    this.receiver.cancel(requestId);
  }

  /** A load failed: per kv_load_failure_policy, the engine recomputes its blocks or fails the request (503). */
  private loadFailed(requestId: string, reason: string, blockIds: readonly number[]): void {
    if (this.o.failurePolicy === 'fail') {
      this.log.error(`Reqid: ${requestId}: ${reason}; kv_load_failure_policy is fail: the request fails (kv_load_failed)`);
      this.report.loadFailed(requestId, reason);
      return;
    }
    this.log.warn(`Reqid: ${requestId}: ${reason}; the engine recomputes the prompt`);
    for (const b of blockIds) this.report.loadError(b);
  }

  takeFailedLoads(): Map<string, string> {
    return this.report.takeFailedLoads();
  }

  /** Push writes start here, after the forward, and run beside the next one (nothing is awaited). */
  waitForSave(): Promise<void> {
    this.sender.afterForward();
    return Promise.resolve();
  }

  getFinished(): { doneSending: Set<string>; doneRecving: Set<string> } {
    return this.report.takeFinished();
  }

  getBlockIdsWithLoadErrors(): Set<number> {
    return this.report.takeLoadErrors();
  }

  async shutdown(): Promise<void> {
    for (const p of this.pending.values()) if (p.heartbeat) clearInterval(p.heartbeat);
    const receiving = this.receiver.close(); // push slots end now; their loads settle at once
    await Promise.all([...this.loading.values()]);
    await receiving;
    await this.sender.close();
    await Promise.all([...this.notifies]);
    this.leases?.stop(true);
    await this.transport?.close();
  }
}

/**
 * --kv-transfer-config kv_connector_extra_config of TcpConnector (all optional):
 *   host (bind, default 127.0.0.1), port (default 0 = any free), advertise_host / advertise_port (what
 *   decoders dial: NAT, pods), connections (per peer, default 4), lease_secs (30), heartbeat_secs (5),
 *   load_timeout_secs (30), peer_allowlist ("host:port" list of prefillers' transport endpoints this
 *   decoder may pull from, and for push their API addresses; default loopback only; serve's --kv-peer-allowlist adds to it),
 *   kv_load_failure_policy (recompute | fail; default recompute, or the config's top-level field).
 */
export function tcpConnectorOptions(extra: Record<string, unknown> | undefined, base: Pick<TcpConnectorOptions, 'key' | 'identity' | 'failurePolicy' | 'minRetrieveTokens'>): TcpConnectorOptions {
  const e = extra ?? {};
  const known = ['host', 'port', 'advertise_host', 'advertise_port', 'connections', 'lease_secs', 'heartbeat_secs', 'load_timeout_secs', 'peer_allowlist', 'kv_load_failure_policy'];
  for (const k of Object.keys(e)) if (!known.includes(k)) throw new PdsError('PDS_ERR_CONFIG', `kv_connector_extra_config.${k}: unknown field for ${TCP_CONNECTOR} (known: ${known.join(', ')})`, k);
  const str = (k: string) => {
    if (e[k] === undefined) return undefined;
    if (typeof e[k] !== 'string' || !e[k]) throw new PdsError('PDS_ERR_CONFIG', `kv_connector_extra_config.${k} must be a non-empty string`, k);
    return e[k] as string;
  };
  const num = (k: string, min: number, max: number, int = true) => {
    const v = e[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !(v >= min && v <= max) || (int && !Number.isInteger(v))) throw new PdsError('PDS_ERR_CONFIG', `kv_connector_extra_config.${k} must be a number in [${min}, ${max}]`, k);
    return v;
  };
  const secs = (k: string) => {
    const v = num(k, 0.05, 86400, false);
    return v === undefined ? undefined : Math.round(v * 1000);
  };
  const policy = e.kv_load_failure_policy;
  if (policy !== undefined && policy !== 'fail' && policy !== 'recompute')
    throw new PdsError('PDS_ERR_CONFIG', 'kv_connector_extra_config.kv_load_failure_policy must be "fail" or "recompute"', 'kv_load_failure_policy');
  const allow = e.peer_allowlist;
  if (allow !== undefined && (!Array.isArray(allow) || !allow.every((a) => typeof a === 'string' && /^.+:\d+$/.test(a))))
    throw new PdsError('PDS_ERR_CONFIG', 'kv_connector_extra_config.peer_allowlist must be a list of "host:port"', 'peer_allowlist');
  return {
    ...base,
    failurePolicy: (policy as 'fail' | 'recompute' | undefined) ?? base.failurePolicy ?? 'recompute',
    host: str('host'),
    port: num('port', 0, 65535),
    advertiseHost: str('advertise_host'),
    advertisePort: num('advertise_port', 1, 65535),
    connections: num('connections', 1, 64),
    leaseMs: secs('lease_secs'),
    heartbeatMs: secs('heartbeat_secs'),
    loadTimeoutMs: secs('load_timeout_secs'),
    peerAllowlist: (allow as string[] | undefined) ?? null,
  };
}
