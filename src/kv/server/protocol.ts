// The kv-server wire protocol (version 2): length-prefixed binary frames over TCP, little-endian.
//
// Frame = header (16 bytes) + payload (length bytes)
//   off 0  u32 magic    0x564b4450 (the bytes "PDKV")
//   off 4  u8  version  2
//   off 5  u8  opcode   (Op below; a reply carries its request's opcode)
//   off 6  u16 status   requests: 0; replies: Status below (non-OK replies may carry a UTF-8 message)
//   off 8  u32 request id, chosen by the client, echoed in the reply (replies may come out of order)
//   off 12 u32 payload length. Limits: before AUTH succeeds, PREAUTH_MAX_PAYLOAD; after, PUT up to the
//          server's max frame payload (AUTH's reply tells it), every other op CONTROL_MAX_PAYLOAD. Larger ->
//          TOO_LARGE and the server closes the connection. Bad magic/version -> BAD_REQUEST + close.
// Keys are the 32 raw bytes of a chunk hash (chunk-hash.ts). u64 values are < 2^53.
//
// Session (kv-auth.ts): every connection starts HELLO, AUTH (mutual challenge-response over the internal
// secret, src/security/handshake.ts). Any other op before AUTH succeeded -> UNAUTHORIZED + close.
// HELLO    32B client nonce                      u8 mode (0 = server has no secret, 1 = secret), 32B server
//                                                nonce, 32B server proof (zeros in mode 0)
// AUTH     32B client proof (zeros in mode 0),   session info (kv-auth.ts: pool size, page size, max payload,
//          16B writer id                         pool nonce, pool file path, segment size, idle timeout, limits)
//                                                + 32B MAC over it (mode 1); UNAUTHORIZED + close on a bad proof
// The writer id (random per client process, kept across reconnects) owns the chunks that client commits.
//
// Op       request payload                       OK reply payload
// ALLOC    key, u64 size                         u64 offset (in the pool file); EXISTS, FULL, TOO_LARGE, LIMIT
// COMMIT   key                                   - (makes this connection's allocation visible); NOT_FOUND
// ABORT    key                                   - (drops this connection's uncommitted allocation); NOT_FOUND
// LOOKUP   u8 flags (1 = pin hits), u32 n, keys  u32 number of leading keys committed (with pin: pinned; a
//                                                connection at its pin limit gets fewer)
// GET_LOC  key                                   u64 offset, u64 size; pins the chunk (UNPIN when read); LIMIT
// PIN      u32 n, keys                           u32 number pinned (absent keys are skipped; stops at the limit)
// UNPIN    u32 n, keys                           u32 number unpinned (only this connection's pins)
// DELETE   key                                   -; NOT_FOUND; FORBIDDEN unless this writer committed it (an
//                                                uncommitted allocation of this connection is aborted)
// STATS    -                                     UTF-8 JSON object (see KvServer.stats)
// PUT      key, bytes                            - ; writes into this connection's allocation of key if it
//                                                has one of that size, else allocates; then commits.
//                                                EXISTS, FULL, TOO_LARGE, LIMIT
// GET      key                                   the chunk's bytes; NOT_FOUND
// PING     -                                     - (keeps an idle connection open)
// A committed key is never overwritten (EXISTS) while it exists; only its writer or eviction removes it.
// Pins and uncommitted allocations belong to the connection: closing it releases them all.
// Pool file (segment 0): page 0 is a header ("PDKVPOOL", 16-byte nonce = the session's pool nonce, u64 pool
// size) that a client checks after mapping, so a same-named file of another server is never mistaken for it.

export const MAGIC = 0x564b4450;
export const VERSION = 2;
export const HEADER_BYTES = 16;
export const KEY_BYTES = 32;
export const PAGE_SIZE = 4096;
export const POOL_MAGIC = 'PDKVPOOL';
export const DEFAULT_MAX_PAYLOAD = 256 * 2 ** 20;
/** Largest payload of any op but PUT (a key list of 32k keys). */
export const CONTROL_MAX_PAYLOAD = 2 ** 20 + 8;
/** Largest payload before AUTH succeeded (HELLO, AUTH). */
export const PREAUTH_MAX_PAYLOAD = 64;

export enum Op {
  HELLO = 1,
  ALLOC = 2,
  COMMIT = 3,
  ABORT = 4,
  LOOKUP = 5,
  GET_LOC = 6,
  PIN = 7,
  UNPIN = 8,
  DELETE = 9,
  STATS = 10,
  PUT = 11,
  GET = 12,
  AUTH = 13,
  PING = 14,
}

export enum Status {
  OK = 0,
  NOT_FOUND = 1,
  EXISTS = 2,
  FULL = 3,
  BAD_REQUEST = 4,
  TOO_LARGE = 5,
  INTERNAL = 6,
  UNAUTHORIZED = 7,
  FORBIDDEN = 8,
  /** a per-connection limit (uncommitted allocations, pins) */
  LIMIT = 9,
}

export interface Frame {
  op: number;
  status: number;
  reqId: number;
  payload: Buffer; // with a DirectSink: only the first `prefix` bytes
  /** ctx returned by the DirectSink for this frame, when one took its payload. */
  direct?: unknown;
}

/**
 * Lets one opcode's payload bypass the frame buffer: after the first `prefix` bytes arrive, target()
 * names where the remaining `rest` bytes go (view of exactly `rest` bytes), or null to drop them.
 */
export interface DirectSink {
  op: number;
  prefix: number;
  target(prefix: Buffer, rest: number): { view: Uint8Array | null; ctx: unknown };
}

export function encodeHeader(op: number, status: number, reqId: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt8(VERSION, 4);
  h.writeUInt8(op, 5);
  h.writeUInt16LE(status, 6);
  h.writeUInt32LE(reqId >>> 0, 8);
  h.writeUInt32LE(length, 12);
  return h;
}

export type ReadError = { kind: 'bad_magic' | 'bad_version' | 'too_large'; reqId: number; op: number; length: number };

/**
 * Incremental frame parser: push() socket chunks, get back whole frames. Each payload is copied once,
 * into a buffer of its exact length. After a ReadError the stream is unusable (the caller closes it).
 */
export class FrameReader {
  private head = Buffer.alloc(HEADER_BYTES);
  private headFill = 0;
  private cur: {
    op: number;
    status: number;
    reqId: number;
    payload: Buffer; // whole payload, or the DirectSink prefix
    fill: number;
    rest: number; // bytes after the prefix still to come (DirectSink only)
    sink: { view: Uint8Array | null; ctx: unknown; fill: number } | null;
  } | null = null;
  private failed = false;

  /** limit: the largest payload accepted, or a function of the opcode (read when each header arrives). */
  constructor(
    private readonly limit: number | ((op: number) => number),
    private readonly direct?: DirectSink,
  ) {}

  /** Frames completed by this chunk; a ReadError ends the list (and the stream). */
  push(chunk: Buffer): Array<Frame | ReadError> {
    const out: Array<Frame | ReadError> = [];
    this.pushEach(chunk, (f) => (out.push(f), true));
    return out;
  }

  /**
   * Like push, but hands each frame to `each` as soon as it is complete, before the next frame's bytes are
   * parsed (so a DirectSink target sees the effects of every earlier frame); `each` returning false stops.
   */
  pushEach(chunk: Buffer, each: (f: Frame | ReadError) => boolean): void {
    const out = { push: (f: Frame | ReadError) => (each(f) ? 0 : (this.failed = true, 0)) };
    if (this.failed) return;
    let pos = 0;
    while (pos < chunk.length) {
      if (!this.cur) {
        const n = Math.min(HEADER_BYTES - this.headFill, chunk.length - pos);
        chunk.copy(this.head, this.headFill, pos, pos + n);
        this.headFill += n;
        pos += n;
        if (this.headFill < HEADER_BYTES) break;
        this.headFill = 0;
        const h = this.head;
        const reqId = h.readUInt32LE(8);
        const op = h.readUInt8(5);
        const length = h.readUInt32LE(12);
        const bad = h.readUInt32LE(0) !== MAGIC ? 'bad_magic' : h.readUInt8(4) !== VERSION ? 'bad_version' : length > (typeof this.limit === 'number' ? this.limit : this.limit(op)) ? 'too_large' : null;
        if (bad) {
          this.failed = true;
          out.push({ kind: bad, reqId, op, length });
          return;
        }
        const d = this.direct && op === this.direct.op && length > this.direct.prefix ? this.direct : null;
        const head = d ? d.prefix : length;
        this.cur = { op, status: h.readUInt16LE(6), reqId, payload: Buffer.allocUnsafe(head), fill: 0, rest: length - head, sink: null };
      }
      const c = this.cur;
      if (c.fill < c.payload.length) {
        const n = Math.min(c.payload.length - c.fill, chunk.length - pos);
        chunk.copy(c.payload, c.fill, pos, pos + n);
        c.fill += n;
        pos += n;
        if (c.fill === c.payload.length && c.rest > 0) c.sink = { ...this.direct!.target(c.payload, c.rest), fill: 0 };
      }
      if (c.sink && c.sink.fill < c.rest) {
        const n = Math.min(c.rest - c.sink.fill, chunk.length - pos);
        if (c.sink.view) c.sink.view.set(chunk.subarray(pos, pos + n), c.sink.fill);
        c.sink.fill += n;
        pos += n;
      }
      if (c.fill === c.payload.length && (!c.sink || c.sink.fill === c.rest)) {
        this.cur = null;
        out.push({ op: c.op, status: c.status, reqId: c.reqId, payload: c.payload, ...(c.sink ? { direct: c.sink.ctx } : {}) });
        if (this.failed) return;
      }
    }
  }

  /** true while a frame has started (header or payload bytes received) but is not complete. */
  get midFrame(): boolean {
    return this.headFill > 0 || this.cur !== null;
  }

  /** Bytes of a frame received so far but not complete (a truncated frame at close). */
  get pendingBytes(): number {
    return this.headFill + (this.cur ? HEADER_BYTES + this.cur.fill + (this.cur.sink?.fill ?? 0) : 0);
  }
}

export function isReadError(f: Frame | ReadError): f is ReadError {
  return 'kind' in f;
}

export function keyToBytes(hex: string): Buffer {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new RangeError(`bad chunk key "${hex}" (want 64 lowercase hex chars)`);
  return Buffer.from(hex, 'hex');
}

/** `u32 n, keys` (PIN, UNPIN, and LOOKUP after its flags byte). */
export function encodeKeyList(keys: readonly string[], flags?: number): Buffer {
  const pre = flags === undefined ? 0 : 1;
  const b = Buffer.allocUnsafe(pre + 4 + keys.length * KEY_BYTES);
  if (pre) b.writeUInt8(flags!, 0);
  b.writeUInt32LE(keys.length, pre);
  keys.forEach((k, i) => keyToBytes(k).copy(b, pre + 4 + i * KEY_BYTES));
  return b;
}

/** Inverse of encodeKeyList; null when the payload is malformed. */
export function decodeKeyList(p: Buffer, withFlags: boolean): { flags: number; keys: string[] } | null {
  const pre = withFlags ? 1 : 0;
  if (p.length < pre + 4) return null;
  const n = p.readUInt32LE(pre);
  if (p.length !== pre + 4 + n * KEY_BYTES) return null;
  const keys: string[] = [];
  for (let i = 0; i < n; i++) keys.push(p.toString('hex', pre + 4 + i * KEY_BYTES, pre + 4 + (i + 1) * KEY_BYTES));
  return { flags: withFlags ? p.readUInt8(0) : 0, keys };
}

export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
