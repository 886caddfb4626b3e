// The compatibility hash and the field-by-field check behind it (KV transport handshake).
import { createHash } from 'node:crypto';
import { KvTransportError, TRANSPORT_VERSION, type KvIdentity, type KvLayout } from './transport.js';

const FIELDS: ReadonlyArray<keyof KvIdentity> = ['model', 'kvDtype', 'numLayers', 'numKvHeads', 'headDim', 'blockSize'];

/** sha256 hex over the identity fields in a fixed order and the transport version. */
export function compatHash(id: KvIdentity, version = TRANSPORT_VERSION): string {
  const h = createHash('sha256');
  for (const f of FIELDS) h.update(`${f}=${String(id[f])}\n`);
  h.update(`transport_version=${version}\n`);
  return h.digest('hex');
}

/** Throws KvTransportError('mismatch') naming the first differing field (block size with its own message). */
export function checkCompatible(local: KvIdentity, peer: KvIdentity, peerVersion: number, peerHash: string): void {
  if (peerVersion !== TRANSPORT_VERSION) throw new KvTransportError('mismatch', `KV transport version mismatch: local ${TRANSPORT_VERSION}, peer ${peerVersion}`);
  if (local.blockSize !== peer.blockSize)
    throw new KvTransportError(
      'mismatch',
      `KV block size mismatch: local ${local.blockSize}, peer ${peer.blockSize} (heterogeneous block sizes are not supported; start both engines with the same --block-size)`,
    );
  for (const f of FIELDS)
    if (local[f] !== peer[f]) throw new KvTransportError('mismatch', `KV layout mismatch in ${f}: local ${JSON.stringify(local[f])}, peer ${JSON.stringify(peer[f])}`);
  if (compatHash(peer, peerVersion) !== peerHash) throw new KvTransportError('mismatch', 'KV compatibility hash mismatch: the peer sent a hash that does not match its identity');
}

/** Throws unless the identity is well formed (validated once when a region is registered or received). */
export function checkIdentity(id: unknown): KvIdentity {
  const o = id as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw new KvTransportError('protocol', 'KV identity is not an object');
  if (typeof o.model !== 'string' || o.model.length > 512) throw new KvTransportError('protocol', 'KV identity: model must be a string of at most 512 characters');
  if (typeof o.kvDtype !== 'string' || o.kvDtype.length > 32) throw new KvTransportError('protocol', 'KV identity: kvDtype must be a short string');
  for (const f of ['numLayers', 'numKvHeads', 'headDim', 'blockSize'] as const) {
    const v = o[f];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 1 << 20) throw new KvTransportError('protocol', `KV identity: ${f} must be a positive integer`);
  }
  return { model: o.model, kvDtype: o.kvDtype, numLayers: o.numLayers as number, numKvHeads: o.numKvHeads as number, headDim: o.headDim as number, blockSize: o.blockSize as number };
}

export function checkLayout(l: unknown): KvLayout {
  const o = l as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw new KvTransportError('protocol', 'KV layout is not an object');
  for (const f of ['numBlocks', 'blockSize', 'numLayers', 'rowBytes'] as const) {
    const v = o[f];
    if (!Number.isSafeInteger(v) || (v as number) < 1) throw new KvTransportError('protocol', `KV layout: ${f} must be a positive integer`);
  }
  return { numBlocks: o.numBlocks as number, blockSize: o.blockSize as number, numLayers: o.numLayers as number, rowBytes: o.rowBytes as number };
}
