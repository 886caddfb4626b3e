// The engine <-> KV layer seam, shaped like vLLM's KV connector v1 (anchors §5).
// The engine calls only these methods; what the KV layer does behind them (stores, tiers, transports)
// is its own business. The engine gets one from a ConnectorFactory (./factory.ts); the KV layer's
// implementations are registered by name in src/kv/connector/registry.ts.
//
// Life of a request through a connector:
//  scheduler side (event-loop thread, no awaiting):
//   1. getNumNewMatchedTokens(req, numComputed) before a WAITING request is first scheduled.
//      Returns how many prompt tokens past numComputed can be loaded from outside; null = "ask again
//      later" (an async lookup is in flight; no side effects besides starting that lookup).
//   2. updateStateAfterAlloc(req, blockIds, numExternal) once blocks for the external tokens exist.
//   3. buildConnectorMeta(out) once per step: what the worker side must load/save this step.
//   4. requestFinished(req, blockIds) when the request ends; delayFree=true keeps its blocks until the
//      worker side reports it in getFinished().doneSending.
//  worker side (around each forward):
//   startLoadKv(meta) before the forward: loads (async, whole requests) into the blocks named by meta;
//   a loading request sits in WAITING_FOR_REMOTE_KVS, so no forward reads its blocks until it is done.
//   waitForSave() after the forward: the saves of meta (the native forward runs all layers in one call,
//   so there is no per-layer hook). getFinished() is polled every step.
import type { KvTransferParams } from './types.js';

export type KvRole = 'kv_producer' | 'kv_consumer' | 'kv_both';

/** What the connector sees of a request (read-only view of the engine's sequence). */
export interface ConnectorRequest {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  /** Tokens whose KV exists in the engine's blocks (prefix cache + loaded + computed). */
  readonly numComputedTokens: number;
  /** Block ids of the request, in order (block i holds tokens [i*blockSize, (i+1)*blockSize)). */
  readonly blockIds: readonly number[];
  readonly kvTransferParams?: KvTransferParams;
  /** Set once the request has ended (in requestFinished): 'abort' = nobody will read its output. */
  readonly finishReason?: string | null;
}

/** Per-step plan handed from the scheduler side to the worker side. */
export interface ConnectorMetadata {
  /** Loads to start: tokens [start, end) of the request go into its blocks. */
  loads: Array<{ requestId: string; tokenIds: readonly number[]; start: number; end: number; blockIds: readonly number[] }>;
  /** Saves after this step's forward: tokens [start, end) of the request are now computed in its blocks. */
  saves: Array<{ requestId: string; tokenIds: readonly number[]; start: number; end: number; blockIds: readonly number[]; isFinalChunk: boolean }>;
}

/** The engine's KV cache as the worker side sees it (implemented over NativeModel). */
export interface KvCacheAccess {
  readonly blockSize: number;
  readonly bytesPerToken: number; // all layers, K and V, in the KV dtype
  /** Layout of dst: [layers, 2, numTokens, kv_heads, head_dim]; tokens are the first numTokens slots of blockIds. */
  gather(blockIds: Int32Array, numTokens: number, dst: Uint8Array): Promise<void>;
  scatter(blockIds: Int32Array, numTokens: number, src: Uint8Array): Promise<void>;
  /**
   * Page-locks host memory the transfers read or write (kv-server pool pages) for direct DMA; returns the
   * undo, or null where it does not apply (cpu) or failed (the memory stays pageable: slower, still correct).
   */
  registerHost?(view: Uint8Array): (() => void) | null;
  /**
   * The KV cache's own host memory, [layers, 2, blocks, blockSize, kv_heads*head_dim*dtype] (the backend's
   * layout), for transports that read and write blocks in place (tcp); absent where the cache is on a device.
   */
  hostRegion?(): Uint8Array | null;
  /** Opaque handle a peer engine on this host maps to read this KV cache directly (absent/throws: no peer transfer). */
  exportPeerHandle?(): Uint8Array;
  /** All layers' K and V of the peer's blocks srcBlocks[i] into this cache's dstBlocks[i]; rejects on failure. */
  copyFromPeer?(handle: Uint8Array, srcBlocks: Int32Array, dstBlocks: Int32Array): Promise<void>;
}

export interface MatchResult {
  /** Tokens loadable from outside (their load always runs in the background); null = ask again later. */
  count: number | null;
}

/**
 * A POST route a connector serves on the engine's API server. Its path is under /v1/kv/, which the
 * server admits to signed internal requests only (src/server/edge-auth.ts).
 */
export interface ConnectorRoute {
  path: string;
  /** body: the request's parsed JSON, unvalidated; returns the JSON reply; throws PdsError or ZodError (4xx). */
  handle(body: unknown): unknown;
}

/** What the serving process (`pdserve serve`) tells a connector once, before its API server listens. */
export interface ConnectorServing {
  /** The internal secret's key; null = none configured (no peer can authenticate). */
  internalKey: Buffer | null;
  /** --kv-peer-allowlist ("host:port" entries); empty = loopback peers only. */
  peerAllowlist: readonly string[];
}

export interface KvConnector {
  readonly role: KvRole;
  // ---- scheduler side ----
  getNumNewMatchedTokens(req: ConnectorRequest, numComputedTokens: number): MatchResult;
  updateStateAfterAlloc(req: ConnectorRequest, blockIds: readonly number[], numExternalTokens: number): void;
  buildConnectorMeta(step: { scheduled: Array<{ req: ConnectorRequest; numNewTokens: number; isPrefillDone: boolean }> }): ConnectorMetadata;
  requestFinished(req: ConnectorRequest, blockIds: readonly number[]): { delayFree: boolean; kvTransferParams?: KvTransferParams };
  // ---- worker side ----
  registerKvCache(kv: KvCacheAccess): void;
  startLoadKv(meta: ConnectorMetadata): void;
  waitForSave(): Promise<void>;
  /** Requests whose async save (doneSending) or async load (doneRecving) completed since the last call. */
  getFinished(): { doneSending: Set<string>; doneRecving: Set<string> };
  /** Blocks whose load failed: the engine recomputes their tokens. */
  getBlockIdsWithLoadErrors(): Set<number>;
  /**
   * Requests among getFinished().doneRecving whose load failed under kv_load_failure_policy 'fail'
   * (request id -> reason): the engine ends them with a kv_load_failed error (HTTP 503) instead of
   * recomputing. Taken right after getFinished(); absent = every failure recomputes.
   */
  takeFailedLoads?(): Map<string, string>;
  /**
   * A request waiting for its load (WAITING_FOR_REMOTE_KVS) was aborted: the connector may cut the load
   * short (it still reports the request in doneRecving, then requestFinished follows). Optional.
   */
  loadAborted?(requestId: string): void;
  /** Called when a request is aborted/finished and nothing more will be asked about it. */
  shutdown(): Promise<void>;
  /** Cumulative event counts for /metrics (e.g. storedChunks, loadedTokens); optional. */
  stats?(): Record<string, number>;
  // ---- serving process (optional; the engine itself never calls these) ----
  /** Once, before the API server listens: takes its settings, returns the routes to mount (absent = none). */
  attachServer?(s: ConnectorServing): ConnectorRoute[];
  /** Once the API server listens on host:port (what a producer advertises to its peers). */
  serverListening?(host: string, port: number): void;
}
