// The `tcp` KV transport: a listener serving the registered region (tcp-server.ts) and a pool of
// authenticated connections per peer (tcp-conn.ts), reused across requests. A block list is striped
// over the peer's connections (contiguous stripes, so runs of consecutive ids stay one span each) and
// cut into ops of at most maxOpBytes; all stripes run at once, no per-block round trip.
// Every wait is bounded: connect, handshake, idle (both sides), the whole transfer (timeoutMs).
// A peer whose instance id changed (restart) gets a fresh handshake on new connections; an op that names
// the old instance id (remote_engine_id) is refused with reason 'restarted', never served stale state.
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { getLogger, type Logger } from '../../util/logger.js';
import { checkBlockIds, checkRegion, spansOf, wireBytes } from './region.js';
import { TcpClientConn } from './tcp-conn.js';
import { helloInfoOf, TcpServeConn } from './tcp-server.js';
import {
  KvTransportError,
  type KvRegion,
  type KvTransport,
  type NotifyKind,
  type PeerAddress,
  type PeerInfo,
  type ServeHooks,
  type TransferOptions,
  type TransferResult,
} from './transport.js';

export interface TcpTransportOptions {
  /** the internal secret (32 bytes); peers without it are refused both ways */
  key: Buffer;
  /** bind address (default 127.0.0.1: loopback unless told) */
  host?: string;
  port?: number; // default 0 (any free port)
  /** what peers are told to dial (NAT, pods); default the bound address */
  advertiseHost?: string;
  advertisePort?: number;
  connectionsPerPeer?: number; // default 4
  connectTimeoutMs?: number; // default 5000
  handshakeTimeoutMs?: number; // default 5000
  /** client side closes pooled idle connections after this; the server after twice this (default 60000) */
  idleTimeoutMs?: number;
  /** default whole-transfer timeout (default 30000) */
  transferTimeoutMs?: number;
  /** server: a transfer making no progress this long is cut (default 10000) */
  stallTimeoutMs?: number;
  maxConnections?: number; // default 256
  maxOpBytes?: number; // default 256 MiB
  hooks?: ServeHooks;
  instanceId?: string;
  log?: Logger;
}

interface Link {
  addr: string;
  conns: TcpClientConn[];
  info: PeerInfo | null;
  opening: Promise<void> | null;
}

export class TcpTransport implements KvTransport {
  readonly name = 'tcp';
  readonly instanceId: string;
  private region: KvRegion | null = null;
  private server: net.Server | null = null;
  private readonly serving = new Set<TcpServeConn>();
  private readonly links = new Map<string, Link>();
  private inFlight = 0;
  private rr = 0;
  private closed = false;
  private readonly o: Required<Omit<TcpTransportOptions, 'advertiseHost' | 'advertisePort' | 'instanceId' | 'log' | 'hooks'>> & TcpTransportOptions;
  private readonly log: Logger;

  constructor(opts: TcpTransportOptions) {
    if (!Buffer.isBuffer(opts.key) || opts.key.length < 16) throw new KvTransportError('auth', 'the tcp KV transport needs the internal secret');
    this.o = {
      host: '127.0.0.1',
      port: 0,
      connectionsPerPeer: 4,
      connectTimeoutMs: 5000,
      handshakeTimeoutMs: 5000,
      idleTimeoutMs: 60000,
      transferTimeoutMs: 30000,
      stallTimeoutMs: 10000,
      maxConnections: 256,
      maxOpBytes: 256 * 1024 * 1024,
      // an option given as undefined keeps its default
      ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as TcpTransportOptions),
    };
    if (!Number.isInteger(this.o.connectionsPerPeer) || this.o.connectionsPerPeer < 1 || this.o.connectionsPerPeer > 64)
      throw new KvTransportError('protocol', 'connectionsPerPeer must be an integer in [1, 64]');
    this.instanceId = opts.instanceId ?? randomUUID();
    this.log = opts.log ?? getLogger('kv-transport');
  }

  registerRegion(region: KvRegion): void {
    if (this.region) throw new KvTransportError('protocol', 'a KV region is already registered');
    checkRegion(region);
    this.region = region;
  }

  private need(): KvRegion {
    if (!this.region) throw new KvTransportError('protocol', 'no KV region registered');
    if (this.closed) throw new KvTransportError('closed', 'the transport is closed');
    return this.region;
  }

  listen(): Promise<{ host: string; port: number }> {
    const region = this.need();
    if (this.server) throw new KvTransportError('protocol', 'already listening');
    const srv = net.createServer({ noDelay: true });
    srv.maxConnections = this.o.maxConnections;
    srv.on('connection', (sock) => {
      const c = new TcpServeConn(
        sock,
        {
          key: this.o.key,
          region,
          instanceId: this.instanceId,
          hooks: this.o.hooks ?? {},
          log: this.log,
          handshakeTimeoutMs: this.o.handshakeTimeoutMs,
          idleTimeoutMs: 2 * this.o.idleTimeoutMs,
          stallTimeoutMs: this.o.stallTimeoutMs,
          maxConnections: this.o.maxConnections,
          maxOpBytes: this.o.maxOpBytes,
        },
        () => this.serving.delete(c),
      );
      this.serving.add(c);
    });
    this.server = srv;
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.o.port, this.o.host, () => {
        srv.off('error', reject);
        const a = srv.address() as net.AddressInfo;
        resolve({ host: this.o.advertiseHost ?? a.address, port: this.o.advertisePort ?? a.port });
      });
    });
  }

  private link(peer: PeerAddress): Link {
    const addr = `${peer.host}:${peer.port}`;
    let l = this.links.get(addr);
    if (!l) {
      l = { addr, conns: [], info: null, opening: null };
      this.links.set(addr, l);
    }
    return l;
  }

  /** Opens connections until the link has connectionsPerPeer live ones, all to one peer instance. */
  private async ensure(peer: PeerAddress, deadline: number): Promise<Link> {
    const region = this.need();
    const l = this.link(peer);
    for (;;) {
      l.conns = l.conns.filter((c) => c.isOpen);
      if (l.conns.length >= this.o.connectionsPerPeer) break;
      if (!l.opening) {
        const missing = this.o.connectionsPerPeer - l.conns.length;
        const left = Math.max(1, deadline - Date.now());
        const opts = {
          host: peer.host,
          port: peer.port,
          key: this.o.key,
          region,
          hello: helloInfoOf(region, this.instanceId),
          connectTimeoutMs: Math.min(this.o.connectTimeoutMs, left),
          handshakeTimeoutMs: Math.min(this.o.handshakeTimeoutMs, left),
          idleTimeoutMs: this.o.idleTimeoutMs,
        };
        l.opening = Promise.allSettled(Array.from({ length: missing }, () => TcpClientConn.open(opts)))
          .then((rs) => {
            const ok = rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
            const bad = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
            if (this.closed) ok.forEach((c) => c.destroy(new KvTransportError('closed', 'transport closed')));
            for (const c of ok) {
              if (l.info && c.peer.instanceId !== l.info.instanceId) {
                // the peer restarted: drop every connection to the old instance, start over with this one
                this.log.info(`KV peer ${l.addr} restarted (instance ${l.info.instanceId} -> ${c.peer.instanceId}); fresh handshake`);
                for (const old of l.conns) old.destroy(new KvTransportError('restarted', `KV peer ${l.addr} restarted`));
                l.conns = [];
              }
              l.info = c.peer;
              l.conns.push(c);
            }
            if (!ok.length && bad) throw bad.reason;
          })
          .finally(() => {
            l.opening = null;
          });
      }
      await l.opening;
    }
    if (peer.instanceId && l.info!.instanceId !== peer.instanceId)
      throw new KvTransportError('restarted', `KV peer ${l.addr} is instance ${l.info!.instanceId}, not ${peer.instanceId} (restarted since; its blocks are gone)`);
    return l;
  }

  async handshake(peer: PeerAddress, timeoutMs = this.o.handshakeTimeoutMs + this.o.connectTimeoutMs): Promise<PeerInfo> {
    return (await this.ensure(peer, Date.now() + timeoutMs)).info!;
  }

  read(peer: PeerAddress, remoteBlocks: Int32Array, localBlocks: Int32Array, opts: TransferOptions): Promise<TransferResult> {
    return this.transfer('read', peer, remoteBlocks, localBlocks, opts);
  }

  write(peer: PeerAddress, localBlocks: Int32Array, remoteBlocks: Int32Array, opts: TransferOptions): Promise<TransferResult> {
    return this.transfer('write', peer, remoteBlocks, localBlocks, opts);
  }

  /**
   * One transfer, retried once on fresh connections when it failed with 'closed' on a pooled connection
   * that had served earlier ops (the peer closed it or restarted and the close was not yet seen): reads
   * and writes of whole blocks are idempotent, so the retry is safe; the deadline is shared.
   */
  private async transfer(op: 'read' | 'write', peer: PeerAddress, remote: Int32Array, local: Int32Array, opts: TransferOptions): Promise<TransferResult> {
    const region = this.need();
    if (remote.length !== local.length) throw new KvTransportError('protocol', `${remote.length} remote blocks for ${local.length} local blocks`);
    checkBlockIds(region.layout, local);
    const t0 = performance.now();
    const deadline = Date.now() + (opts.timeoutMs ?? this.o.transferTimeoutMs);
    const reused = { any: false };
    this.inFlight++;
    try {
      try {
        return await this.transferOnce(op, peer, remote, local, opts, t0, deadline, reused);
      } catch (e) {
        const retry = reused.any && e instanceof KvTransportError && e.reason === 'closed' && !opts.signal?.aborted && deadline - Date.now() > 0;
        if (!retry) throw e;
        this.log.debug(`KV ${op} to ${peer.host}:${peer.port}: pooled connection was dead (${e.message}); retrying on fresh connections`);
        reused.any = false;
        return await this.transferOnce(op, peer, remote, local, opts, t0, deadline, reused);
      }
    } finally {
      this.inFlight--;
    }
  }

  private async transferOnce(
    op: 'read' | 'write',
    peer: PeerAddress,
    remote: Int32Array,
    local: Int32Array,
    opts: TransferOptions,
    t0: number,
    deadline: number,
    reused: { any: boolean },
  ): Promise<TransferResult> {
    const region = this.need();
    const timeoutMs = Math.max(1, deadline - Date.now());
    const used = new Set<TcpClientConn>();
    let failed: Error | null = null;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      const fail = (e: Error) => {
        failed ??= e;
        // the connections carrying this transfer are mid-stream: never reuse them
        for (const c of used) c.destroy(e);
        reject(e);
      };
      timer = setTimeout(() => fail(new KvTransportError('timeout', `KV ${op} of ${local.length} blocks from ${peer.host}:${peer.port} timed out after ${timeoutMs} ms`)), timeoutMs);
      if (opts.signal) {
        onAbort = () => fail(new KvTransportError('aborted', `KV ${op} aborted`));
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    stop.catch(() => undefined);
    try {
      const pooled = new Set(this.link(peer).conns);
      const l = await Promise.race([this.ensure(peer, deadline), stop]);
      const peerLayout = l.info!.layout;
      checkBlockIds(peerLayout, remote);
      const conns = l.conns.filter((c) => c.isOpen);
      if (!conns.length) throw new KvTransportError('closed', `KV peer ${l.addr}: no open connection`);
      const k = Math.min(conns.length, remote.length);
      const start = this.rr++ % conns.length;
      const perOp = Math.max(1, Math.floor(this.o.maxOpBytes / wireBytes(region.layout, 1)));
      const parts: Promise<void>[] = [];
      for (let j = 0; j < k; j++) {
        const a = Math.floor((j * remote.length) / k);
        const b = Math.floor(((j + 1) * remote.length) / k);
        const c = conns[(start + j) % conns.length]!;
        if (pooled.has(c)) reused.any = true;
        used.add(c);
        parts.push(
          (async () => {
            for (let x = a; x < b && !failed; x += perOp) {
              const y = Math.min(b, x + perOp);
              const r = remote.subarray(x, y);
              const spans = spansOf(region.layout, local.subarray(x, y));
              const total = wireBytes(region.layout, y - x);
              if (op === 'read') await c.read(opts.requestId, r, spans, total);
              else await c.write(opts.requestId, r, spans, total);
            }
          })(),
        );
      }
      await Promise.race([Promise.all(parts), stop]);
      if (failed) throw failed;
      return { bytes: wireBytes(region.layout, local.length), ms: performance.now() - t0, connections: k };
    } catch (e) {
      if (!failed) {
        failed = e as Error;
        // a part failed: the others may be mid-stream on their connections
        for (const c of used) c.destroy(e as Error);
      }
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Like transfer: retried once on fresh connections when a pooled one turned out dead. */
  async notify(peer: PeerAddress, kind: NotifyKind, requestId: string, opts: { timeoutMs?: number } = {}): Promise<boolean> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.o.handshakeTimeoutMs + this.o.connectTimeoutMs);
    const reused = { any: false };
    try {
      return await this.notifyOnce(peer, kind, requestId, deadline, reused);
    } catch (e) {
      if (!(reused.any && e instanceof KvTransportError && e.reason === 'closed' && deadline - Date.now() > 0)) throw e;
      return await this.notifyOnce(peer, kind, requestId, deadline, reused);
    }
  }

  private async notifyOnce(peer: PeerAddress, kind: NotifyKind, requestId: string, deadline: number, reused: { any: boolean }): Promise<boolean> {
    const timeoutMs = Math.max(1, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    let conn: TcpClientConn | undefined;
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new KvTransportError('timeout', `KV notify ${kind} to ${peer.host}:${peer.port} timed out after ${timeoutMs} ms`);
        conn?.destroy(e);
        reject(e);
      }, timeoutMs);
    });
    stop.catch(() => undefined);
    try {
      const pooled = new Set(this.link(peer).conns);
      const l = await Promise.race([this.ensure(peer, deadline), stop]);
      // the least loaded connection: a notify does not wait behind a bulk transfer when it need not
      conn = l.conns.filter((c) => c.isOpen).sort((a, b) => a.load - b.load)[0];
      if (!conn) throw new KvTransportError('closed', `KV peer ${l.addr}: no open connection`);
      reused.any = pooled.has(conn);
      return await Promise.race([conn.notify(kind, requestId), stop]);
    } finally {
      clearTimeout(timer);
    }
  }

  stats(): { peers: number; connections: number; serving: number; inFlight: number } {
    let connections = 0;
    let peers = 0;
    for (const l of this.links.values()) {
      const n = l.conns.filter((c) => c.isOpen).length;
      connections += n;
      if (n) peers++;
    }
    return { peers, connections, serving: this.serving.size, inFlight: this.inFlight };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const e = new KvTransportError('closed', 'the KV transport is closing');
    for (const l of this.links.values()) for (const c of l.conns) c.destroy(e);
    this.links.clear();
    const srv = this.server;
    this.server = null;
    if (srv) {
      const done = new Promise<void>((r) => srv.close(() => r()));
      for (const c of [...this.serving]) c.destroyNow();
      await done;
    }
  }
}
