// vLLM's KV-event wire format (vllm/distributed/kv_events.py), both directions.
// One ZeroMQ multipart message per batch: [topic (UTF-8), seq (u64 big-endian), payload (msgpack)].
// Payload, msgspec array_like encoding (vLLM <= 0.11; tag name first in each event):
//   [ts: float, [event...], data_parallel_rank: int]
//   event = ["BlockStored", block_hashes, parent_block_hash | nil, token_ids, block_size, lora_id | nil, medium | nil]
//         | ["BlockRemoved", block_hashes, medium | nil]
//         | ["AllBlocksCleared"]
// Newer vLLM encodes the same structs as maps ({ts, events, data_parallel_rank}; events {type: "BlockStored", ...});
// decodeBatch reads both. A block hash is bytes (pdserve: the 32-byte chain hash) or an int (vLLM's
// 64-bit hash); the decoder names both as strings (hex for bytes, decimal for ints).
import { Decoder, encode } from '@msgpack/msgpack';

export type KvEvent =
  | { type: 'BlockStored'; blockHashes: string[]; parentBlockHash: string | null; tokenIds: number[]; blockSize: number; loraId: number | null; medium: string | null }
  | { type: 'BlockRemoved'; blockHashes: string[]; medium: string | null }
  | { type: 'AllBlocksCleared' };

export interface KvEventBatch {
  ts: number; // seconds since the epoch
  events: KvEvent[];
  dataParallelRank: number | null;
}

export const MEDIUM_GPU = 'GPU';

/** Bounds on one decoded payload (hostile peers): larger frames throw in decodeBatch. */
export const WIRE_LIMITS = { maxEvents: 65_536, maxHashes: 65_536, maxTokens: 1 << 20, maxBin: 64, maxStr: 256 };

function hashOut(h: string): Uint8Array | number {
  if (/^[0-9a-f]{64}$/.test(h)) return Buffer.from(h, 'hex'); // pdserve's chain hash
  const n = Number(h);
  return Number.isSafeInteger(n) ? n : Buffer.from(h, 'utf8');
}

/** One batch as the payload frame (array_like, like vLLM's msgspec encoder). */
export function encodeBatch(b: KvEventBatch): Uint8Array {
  const events = b.events.map((e) => {
    switch (e.type) {
      case 'BlockStored':
        return ['BlockStored', e.blockHashes.map(hashOut), e.parentBlockHash === null ? null : hashOut(e.parentBlockHash), e.tokenIds, e.blockSize, e.loraId, e.medium];
      case 'BlockRemoved':
        return ['BlockRemoved', e.blockHashes.map(hashOut), e.medium];
      case 'AllBlocksCleared':
        return ['AllBlocksCleared'];
    }
  });
  return encode(b.dataParallelRank === null ? [b.ts, events] : [b.ts, events, b.dataParallelRank]);
}

export function encodeSeq(seq: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigInt64BE(seq);
  return out;
}

export class WireError extends Error {}

const decoder = new Decoder({
  maxStrLength: WIRE_LIMITS.maxStr,
  maxBinLength: WIRE_LIMITS.maxBin,
  maxArrayLength: Math.max(WIRE_LIMITS.maxEvents, WIRE_LIMITS.maxTokens),
  maxMapLength: 32,
  maxExtLength: 0,
  useBigInt64: true,
});

function hashIn(x: unknown, what: string): string {
  if (x instanceof Uint8Array) return Buffer.from(x).toString('hex');
  if (typeof x === 'bigint') return x.toString();
  if (typeof x === 'number' && Number.isSafeInteger(x)) return String(x);
  throw new WireError(`${what}: a block hash must be bytes or an int`);
}

function hashes(x: unknown, what: string): string[] {
  if (!Array.isArray(x) || x.length > WIRE_LIMITS.maxHashes) throw new WireError(`${what}: block_hashes must be a list of at most ${WIRE_LIMITS.maxHashes}`);
  return x.map((h) => hashIn(h, what));
}

function optInt(x: unknown, what: string): number | null {
  if (x === null || x === undefined) return null;
  const n = typeof x === 'bigint' ? Number(x) : x;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new WireError(`${what} must be an int or nil`);
  return n;
}

function optStr(x: unknown, what: string): string | null {
  if (x === null || x === undefined) return null;
  if (typeof x !== 'string') throw new WireError(`${what} must be a string or nil`);
  return x;
}

function tokenList(x: unknown): number[] {
  if (!Array.isArray(x) || x.length > WIRE_LIMITS.maxTokens) throw new WireError('BlockStored.token_ids must be a list of ints');
  return x.map((t) => {
    const n = typeof t === 'bigint' ? Number(t) : t;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new WireError('BlockStored.token_ids must be ints in [0, 2^32)');
    return n;
  });
}

/** Field i of an array_like event, or field `name` of a map-encoded one. */
function field(e: unknown[] | Record<string, unknown>, i: number, name: string): unknown {
  return Array.isArray(e) ? e[i] : e[name];
}

function decodeEvent(raw: unknown): KvEvent {
  const isMap = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && !(raw instanceof Uint8Array);
  if (!Array.isArray(raw) && !isMap) throw new WireError('an event must be an array or a map');
  const e = raw as unknown[] | Record<string, unknown>;
  const tag = Array.isArray(e) ? e[0] : e.type;
  switch (tag) {
    case 'BlockStored': {
      const blockSize = optInt(field(e, 4, 'block_size'), 'BlockStored.block_size');
      if (blockSize === null || blockSize < 1 || blockSize > 65_536) throw new WireError('BlockStored.block_size must be in [1, 65536]');
      const parent = field(e, 2, 'parent_block_hash');
      return {
        type: 'BlockStored',
        blockHashes: hashes(field(e, 1, 'block_hashes'), 'BlockStored'),
        parentBlockHash: parent === null || parent === undefined ? null : hashIn(parent, 'BlockStored.parent_block_hash'),
        tokenIds: tokenList(field(e, 3, 'token_ids')),
        blockSize,
        loraId: optInt(field(e, 5, 'lora_id'), 'BlockStored.lora_id'),
        medium: optStr(field(e, 6, 'medium'), 'BlockStored.medium'),
      };
    }
    case 'BlockRemoved':
      return { type: 'BlockRemoved', blockHashes: hashes(field(e, 1, 'block_hashes'), 'BlockRemoved'), medium: optStr(field(e, 2, 'medium'), 'BlockRemoved.medium') };
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
    default:
      throw new WireError(`unknown event tag ${JSON.stringify(String(tag)).slice(0, 40)}`);
  }
}

/** Payload frame -> batch. Throws WireError (or the msgpack decoder's error) on anything malformed. */
export function decodeBatch(payload: Uint8Array): KvEventBatch {
  let raw: unknown;
  try {
    raw = decoder.decode(payload);
  } catch (e) {
    throw new WireError(`not msgpack: ${(e as Error).message}`);
  }
  const isMap = raw !== null && typeof raw === 'object' && !Array.isArray(raw) && !(raw instanceof Uint8Array);
  if (!Array.isArray(raw) && !isMap) throw new WireError('a batch must be [ts, events, dp_rank] or a map');
  const b = raw as unknown[] | Record<string, unknown>;
  const ts = field(b, 0, 'ts');
  const tsN = typeof ts === 'bigint' ? Number(ts) : ts;
  if (typeof tsN !== 'number' || !Number.isFinite(tsN)) throw new WireError('batch ts must be a number');
  const events = field(b, 1, 'events');
  if (!Array.isArray(events) || events.length > WIRE_LIMITS.maxEvents) throw new WireError('batch events must be a list');
  return { ts: tsN, events: events.map(decodeEvent), dataParallelRank: optInt(field(b, 2, 'data_parallel_rank'), 'data_parallel_rank') };
}

/** The sequence frame (8 bytes, big-endian, signed: -1 ends a replay). */
export function decodeSeq(frame: Uint8Array): bigint {
  if (frame.length !== 8) throw new WireError(`sequence frame of ${frame.length} bytes (want 8)`);
  return Buffer.from(frame).readBigInt64BE(0);
}
