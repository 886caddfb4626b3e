// The KV transport seam: moves whole KV blocks between two engines' registered KV memory.
// One interface (this file), one implementation per file (tcp-transport.ts; an RDMA or NIXL transport
// would be another), a registry by name (registry.ts), one conformance suite every implementation runs
// (conformance.ts).
//
// Roles: every transport both serves its registered region (peers READ from it and WRITE into it) and
// acts as a client of peers (read = pull, write = push). A peer is reached by host:port; the first use
// handshakes (mutual authentication with the internal secret, then each side's identity and layout);
// an identity mismatch is a KvTransportError('mismatch') naming the field, raised at handshake.
//
// Block bytes: a region is [rows = 2*layers, numBlocks, blockSize, rowBytes] (the engine's KV cache layout,
// native/include/pds/backend.h): block b of row r is the segment at (r*numBlocks + b)*segBytes, segBytes =
// blockSize*rowBytes. read(peer, remote[i] -> local[i]) copies every row's segment of remote block
// remote[i] into local block local[i]; write is the mirror image. Bytes are read and written in place
// in the registered memory (no staging copy on the CPU backend).
import { PdsError, type ErrorCode } from '../../util/errors.js';

/** Bumped on any wire or layout-contract change; part of the compatibility hash. */
export const TRANSPORT_VERSION = 1;

/** What two engines must agree on to exchange KV blocks (the compatibility hash covers all of it). */
export interface KvIdentity {
  model: string; // model identity (name or weights fingerprint)
  kvDtype: string; // 'bf16' | 'f16' | 'f32' ...
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number; // tokens per block
}

/** Where the blocks sit in a region (local facts; numBlocks may differ between peers). */
export interface KvLayout {
  numBlocks: number;
  blockSize: number;
  numLayers: number;
  rowBytes: number; // one token of one layer's K (or V): kv_heads * head_dim * dtype bytes
}

/** Host memory holding a KV cache, read and written in place by the transport. */
export interface KvRegion {
  identity: KvIdentity;
  layout: KvLayout;
  /** layout.numLayers*2 * numBlocks * blockSize * rowBytes bytes */
  bytes: Uint8Array;
}

/** The handshake result: who the peer is and how its KV is laid out. */
export interface PeerInfo {
  instanceId: string; // changes when the peer restarts
  identity: KvIdentity;
  layout: KvLayout;
  compatHash: string;
  transport: string;
  version: number;
}

export interface PeerAddress {
  host: string;
  port: number;
  /** When set (remote_engine_id), a peer answering with another instance id is refused ('restarted'). */
  instanceId?: string;
}

export interface TransferOptions {
  /** The request the blocks belong to (the serving side's authorize hook sees it). */
  requestId: string;
  /** Whole operation, connect and handshake included (default: the transport's transferTimeoutMs). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface TransferResult {
  bytes: number;
  ms: number;
  connections: number;
}

/** Completion notifications from a reader/writer to the serving side. */
export type NotifyKind = 'done' | 'heartbeat' | 'abort';
export const NOTIFY_KINDS: readonly NotifyKind[] = ['done', 'heartbeat', 'abort'];

/** What the serving side decides (called only for authenticated peers). */
export interface ServeHooks {
  /** May this peer read (or write) these blocks of requestId? A string = refused, with that reason. */
  authorize?(op: 'read' | 'write', requestId: string, blockIds: Int32Array, peer: PeerInfo): true | string;
  /** A notification; returns whether it matched something (a lease). */
  onNotify?(kind: NotifyKind, requestId: string, peer: PeerInfo): boolean;
  /** A WRITE into this region finished landing (push: the decoder learns its blocks are complete). */
  onWritten?(requestId: string, blockIds: Int32Array, peer: PeerInfo): void;
  /**
   * Checked before each received piece of an authorized WRITE is copied in: false = the target was revoked
   * (the decoder gave up on it): the rest of that WRITE is discarded and refused, nothing more lands.
   */
  writable?(requestId: string): boolean;
}

export interface KvTransport {
  readonly name: string;
  /** This process's instance id (random per start), sent to peers at handshake. */
  readonly instanceId: string;
  /** The region peers read from and write into, and local reads land in / writes come from. Once. */
  registerRegion(region: KvRegion): void;
  /** Starts serving the region; resolves with the bound address (the advertised one when configured). */
  listen(): Promise<{ host: string; port: number }>;
  /** Handshakes (or returns the cached result of a live link). */
  handshake(peer: PeerAddress, timeoutMs?: number): Promise<PeerInfo>;
  /** Pull: the peer's blocks remote[i] into local[i]. Rejects (never hangs) past the timeout. */
  read(peer: PeerAddress, remoteBlocks: Int32Array, localBlocks: Int32Array, opts: TransferOptions): Promise<TransferResult>;
  /** Push: local[i] into the peer's blocks remote[i]; resolves once the peer has them all. */
  write(peer: PeerAddress, localBlocks: Int32Array, remoteBlocks: Int32Array, opts: TransferOptions): Promise<TransferResult>;
  /** Sends a notification; resolves with the peer's onNotify answer. */
  notify(peer: PeerAddress, kind: NotifyKind, requestId: string, opts?: { timeoutMs?: number }): Promise<boolean>;
  /** Open links and resources, for leak checks. */
  stats(): { peers: number; connections: number; serving: number; inFlight: number };
  close(): Promise<void>;
}

export type KvTransportErrorReason = 'mismatch' | 'auth' | 'timeout' | 'closed' | 'protocol' | 'restarted' | 'refused' | 'aborted';

const codeOf: Record<KvTransportErrorReason, ErrorCode> = {
  mismatch: 'PDS_ERR_CONFIG',
  auth: 'PDS_ERR_UNAUTHORIZED',
  timeout: 'PDS_ERR_KV_TIMEOUT',
  closed: 'PDS_ERR_UNAVAILABLE',
  protocol: 'PDS_ERR_BAD_REQUEST',
  restarted: 'PDS_ERR_UNAVAILABLE',
  refused: 'PDS_ERR_FORBIDDEN',
  aborted: 'PDS_ERR_UNAVAILABLE',
};

export class KvTransportError extends PdsError {
  constructor(
    readonly reason: KvTransportErrorReason,
    message: string,
  ) {
    super(codeOf[reason], message);
    this.name = 'KvTransportError';
  }
}
