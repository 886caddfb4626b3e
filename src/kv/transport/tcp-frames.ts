// Wire format of the tcp KV transport. Every frame: a 16-byte header, then `len` payload bytes.
//   header: u32 magic 'PDKT' | u8 type | 3 reserved | u32 tag (the client's op number) | u32 len   (little endian)
// Connection: HELLO -> CHALLENGE -> PROOF -> WELCOME (or ERROR + close), then ops, one at a time per
// connection, answered in order:
//   READ  {reqId, ids}            -> DATA (wireBytes(ids) raw bytes, wire order of region.ts) | ERROR
//   WRITE {reqId, ids} + DATA     -> OK | ERROR   (the DATA frame follows WRITE at once, same tag)
//   NOTIFY {kind, reqId}          -> OK {matched}
// Payloads:
//   HELLO     u16 version, nonce[32]
//   CHALLENGE nonce[32], serverProof[32]
//   PROOF     clientProof[32], JSON HelloInfo
//   WELCOME   JSON HelloInfo
//   READ/WRITE u16 n, reqId[n] (utf8), u32 count, i32 ids[count]
//   NOTIFY    u8 kind, u16 n, reqId[n]
//   OK        u8 matched
//   ERROR     u8 reason, utf8 message
import { KvTransportError, NOTIFY_KINDS, type KvIdentity, type KvLayout, type KvTransportErrorReason, type NotifyKind } from './transport.js';

export const MAGIC = 0x544b4450; // 'PDKT'
export const HEADER_BYTES = 16;
/** Largest non-DATA payload either side accepts. */
export const MAX_CONTROL_BYTES = 64 * 1024;
export const MAX_REQUEST_ID_BYTES = 256;
export const HANDSHAKE_CTX = 'kv-transport-tcp/1';

export const enum Frame {
  HELLO = 1,
  CHALLENGE = 2,
  PROOF = 3,
  WELCOME = 4,
  READ = 5,
  DATA = 6,
  WRITE = 7,
  OK = 8,
  NOTIFY = 9,
  ERROR = 10,
}

export interface HelloInfo {
  instanceId: string;
  identity: KvIdentity;
  layout: KvLayout;
  compatHash: string;
  version: number;
}

export interface Header {
  type: number;
  tag: number;
  len: number;
}

export function header(type: Frame, tag: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt8(type, 4);
  b.writeUInt8(0, 5);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(tag >>> 0, 8);
  b.writeUInt32LE(len, 12);
  return b;
}

export function frame(type: Frame, tag: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([header(type, tag, payload.length), payload]);
}

/** Parses a header; KvTransportError('protocol') on a bad magic or a control payload over the bound. */
export function parseHeader(b: Buffer): Header {
  if (b.readUInt32LE(0) !== MAGIC) throw new KvTransportError('protocol', 'bad frame magic (not a pdserve KV transport peer?)');
  const h = { type: b.readUInt8(4), tag: b.readUInt32LE(8), len: b.readUInt32LE(12) };
  if (h.type < Frame.HELLO || h.type > Frame.ERROR) throw new KvTransportError('protocol', `unknown frame type ${h.type}`);
  if (h.type !== Frame.DATA && h.len > MAX_CONTROL_BYTES) throw new KvTransportError('protocol', `frame of ${h.len} bytes exceeds the ${MAX_CONTROL_BYTES}-byte control limit`);
  return h;
}

function reqIdBytes(requestId: string): Buffer {
  const b = Buffer.from(requestId, 'utf8');
  if (b.length === 0 || b.length > MAX_REQUEST_ID_BYTES) throw new KvTransportError('protocol', `request id must be 1..${MAX_REQUEST_ID_BYTES} bytes`);
  return b;
}

export function encodeBlockOp(requestId: string, ids: Int32Array): Buffer {
  const r = reqIdBytes(requestId);
  const b = Buffer.allocUnsafe(2 + r.length + 4 + 4 * ids.length);
  b.writeUInt16LE(r.length, 0);
  r.copy(b, 2);
  b.writeUInt32LE(ids.length, 2 + r.length);
  const o = 6 + r.length;
  for (let i = 0; i < ids.length; i++) b.writeInt32LE(ids[i]!, o + 4 * i);
  return b;
}

export function decodeBlockOp(p: Buffer): { requestId: string; ids: Int32Array } {
  if (p.length < 6) throw new KvTransportError('protocol', 'short block op');
  const n = p.readUInt16LE(0);
  if (n === 0 || n > MAX_REQUEST_ID_BYTES || p.length < 6 + n) throw new KvTransportError('protocol', 'bad request id in block op');
  const requestId = p.toString('utf8', 2, 2 + n);
  const count = p.readUInt32LE(2 + n);
  if (count === 0 || p.length !== 6 + n + 4 * count) throw new KvTransportError('protocol', 'block op length does not match its block count');
  const ids = new Int32Array(count);
  for (let i = 0; i < count; i++) ids[i] = p.readInt32LE(6 + n + 4 * i);
  return { requestId, ids };
}

export function encodeNotify(kind: NotifyKind, requestId: string): Buffer {
  const r = reqIdBytes(requestId);
  const b = Buffer.allocUnsafe(3 + r.length);
  b.writeUInt8(NOTIFY_KINDS.indexOf(kind), 0);
  b.writeUInt16LE(r.length, 1);
  r.copy(b, 3);
  return b;
}

export function decodeNotify(p: Buffer): { kind: NotifyKind; requestId: string } {
  if (p.length < 4) throw new KvTransportError('protocol', 'short notify');
  const kind = NOTIFY_KINDS[p.readUInt8(0)];
  const n = p.readUInt16LE(1);
  if (!kind || n === 0 || n > MAX_REQUEST_ID_BYTES || p.length !== 3 + n) throw new KvTransportError('protocol', 'bad notify frame');
  return { kind, requestId: p.toString('utf8', 3, 3 + n) };
}

const REASONS: readonly KvTransportErrorReason[] = ['mismatch', 'auth', 'timeout', 'closed', 'protocol', 'restarted', 'refused', 'aborted'];

export function encodeError(e: unknown): Buffer {
  const reason = e instanceof KvTransportError ? e.reason : 'protocol';
  const msg = Buffer.from(String((e as Error)?.message ?? e).slice(0, 1024), 'utf8');
  return Buffer.concat([Buffer.from([REASONS.indexOf(reason)]), msg]);
}

export function decodeError(p: Buffer): KvTransportError {
  const reason = REASONS[p.length ? p.readUInt8(0) : 255] ?? 'protocol';
  return new KvTransportError(reason, `peer: ${p.toString('utf8', 1, Math.min(p.length, 1025))}`);
}

export function parseHelloInfo(p: Buffer): HelloInfo {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(p.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new KvTransportError('protocol', 'handshake info is not JSON');
  }
  if (!o || typeof o !== 'object' || typeof o.instanceId !== 'string' || o.instanceId.length > 128 || typeof o.compatHash !== 'string' || !Number.isInteger(o.version))
    throw new KvTransportError('protocol', 'malformed handshake info');
  return o as unknown as HelloInfo;
}
