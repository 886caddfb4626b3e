// Protocol fuzzer (issue 9 acceptance 3): many connections send random op sequences (ALLOC/DELETE/ALLOC
// included), garbage, truncated, oversized and never-finished frames, for a bounded time. The server must
// not crash, its RSS stays bounded, and once every client has left (and each writer deleted its chunks)
// no byte, pin or allocation is left. Seeded: PDSERVE_FUZZ_SEED reproduces a run; PDSERVE_FUZZ_MS sets
// its length (default 10 s).
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { KvServer } from './kv-server.js';
import { KEY_BYTES, Op, PAGE_SIZE, encodeHeader, u64 } from './protocol.js';
import { clientAnswer, decodeHelloReply, encodeAuth } from './kv-auth.js';
import { newNonce } from '../../security/handshake.js';
import { FrameReader, isReadError, type Frame } from './protocol.js';

const SEED = Number(process.env.PDSERVE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUN_MS = Number(process.env.PDSERVE_FUZZ_MS ?? 10_000);
const SECRET = randomBytes(32);
const WRITERS = Array.from({ length: 4 }, () => randomBytes(16));
const KEYS = Array.from({ length: 24 }, (_, i) => createHash('sha256').update(`fuzz-${i}`).digest());
const WORKERS = 24;

function mulberry32(a: number): () => number {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let server: KvServer;
after(async () => server?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A raw connection; replies are read (or not: paused) and counted, never awaited unless asked. */
class Conn {
  readonly frames: Frame[] = [];
  closed = false;
  private reader = new FrameReader(2 ** 31);
  constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      for (const f of this.reader.push(c)) if (!isReadError(f)) this.frames.push(f);
      if (this.frames.length > 64) this.frames.splice(0, this.frames.length - 64);
    });
    sock.on('error', () => {});
    sock.on('close', () => (this.closed = true));
  }
  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' }, () => resolve(new Conn(s)));
      s.once('error', reject);
    });
  }
  send(op: number, payload: Buffer, reqId = 1): void {
    if (!this.closed) this.sock.write(Buffer.concat([encodeHeader(op, 0, reqId, payload.length), payload]));
  }
  async reply(reqId: number, ms = 3000): Promise<Frame | null> {
    const end = Date.now() + ms;
    while (Date.now() < end && !this.closed) {
      const i = this.frames.findIndex((f) => f.reqId === reqId);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      await sleep(2);
    }
    return null;
  }
  async auth(writer: Buffer): Promise<boolean> {
    const cn = newNonce();
    this.send(Op.HELLO, cn, 1);
    const h = await this.reply(1);
    const hr = h && decodeHelloReply(h.payload);
    if (!hr) return false;
    const a = clientAnswer(SECRET, cn, hr);
    if (!('proof' in a)) return false;
    this.send(Op.AUTH, encodeAuth(a.proof, writer), 2);
    return (await this.reply(2))?.status === 0;
  }
}

function keyList(rnd: () => number, flags: boolean): Buffer {
  const n = Math.floor(rnd() * 6);
  const b = Buffer.alloc((flags ? 1 : 0) + 4 + n * KEY_BYTES);
  if (flags) b[0] = rnd() < 0.5 ? 1 : 0;
  b.writeUInt32LE(rnd() < 0.05 ? n + 3 : n, flags ? 1 : 0); // sometimes a lying count
  for (let i = 0; i < n; i++) KEYS[Math.floor(rnd() * KEYS.length)]!.copy(b, (flags ? 1 : 0) + 4 + i * KEY_BYTES);
  return b;
}

/** One random frame (or misbehaviour); returns false when the connection is to be abandoned. */
function randomFrame(c: Conn, rnd: () => number): boolean {
  const k = KEYS[Math.floor(rnd() * KEYS.length)]!;
  const size = () => (rnd() < 0.03 ? [0, 2 ** 40, 2 ** 53][Math.floor(rnd() * 3)]! : Math.ceil(rnd() * 3 * PAGE_SIZE));
  const x = rnd();
  const id = Math.floor(rnd() * 2 ** 32);
  if (x < 0.16) {
    // ALLOC k, (DELETE k), ALLOC k: the old leak
    c.send(Op.ALLOC, Buffer.concat([k, u64(size())]), id);
    if (rnd() < 0.5) c.send(Op.DELETE, k, id);
    if (rnd() < 0.5) c.send(Op.ALLOC, Buffer.concat([k, u64(size())]), id);
  } else if (x < 0.26) c.send(rnd() < 0.7 ? Op.COMMIT : Op.ABORT, k, id);
  else if (x < 0.33) c.send(Op.DELETE, k, id);
  else if (x < 0.43) c.send(Op.LOOKUP, keyList(rnd, true), id);
  else if (x < 0.5) c.send(rnd() < 0.5 ? Op.GET_LOC : Op.GET, k, id);
  else if (x < 0.58) c.send(rnd() < 0.5 ? Op.PIN : Op.UNPIN, keyList(rnd, false), id);
  else if (x < 0.66) {
    const n = Math.ceil(rnd() * 2 * PAGE_SIZE);
    c.send(Op.PUT, Buffer.concat([k, Buffer.alloc(n, n & 255)]), id);
  } else if (x < 0.7) c.send([Op.STATS, Op.PING, Op.HELLO, Op.AUTH][Math.floor(rnd() * 4)]!, Buffer.alloc(0), id);
  else if (x < 0.74) c.send(Math.floor(rnd() * 256), Buffer.alloc(Math.floor(rnd() * 64)), id); // any opcode
  else if (x < 0.77) c.send(Op.ALLOC, Buffer.alloc(Math.floor(rnd() * 80)), id); // malformed payload
  else if (x < 0.79) {
    c.sock.write(randomBytes(1 + Math.floor(rnd() * 64))); // garbage
    return false;
  } else if (x < 0.81) {
    c.sock.write(encodeHeader(rnd() < 0.5 ? Op.PUT : Op.LOOKUP, 0, id, 2 ** 31)); // oversized
    return false;
  } else if (x < 0.83) {
    // never finished: a header and part of its payload, then silence
    c.sock.write(Buffer.concat([encodeHeader(Op.PUT, 0, id, 8 * PAGE_SIZE), k, Buffer.alloc(100)]));
    return false;
  } else if (x < 0.85) {
    c.sock.end(encodeHeader(Op.ALLOC, 0, id, 40).subarray(0, 1 + Math.floor(rnd() * 15))); // truncated header
    return false;
  } else if (x < 0.87) c.sock.pause(); // stops reading replies
  else c.send(Op.STATS, Buffer.alloc(0), id);
  return true;
}

it(`kv-server protocol fuzzer (seed ${SEED}, ${RUN_MS} ms)`, { timeout: RUN_MS + 60_000 }, async () => {
  console.log(`kv-fuzz seed ${SEED} (PDSERVE_FUZZ_SEED=${SEED} reproduces the op mix)`);
  server = await KvServer.start({
    host: '127.0.0.1', port: 0, poolSize: PAGE_SIZE + 2 * 2 ** 20, quiet: true, secret: SECRET, allocQuarantineMs: 50,
    frameTimeoutMs: 300, authTimeoutMs: 500, idleTimeoutMs: 1500, maxConnections: 64, maxUnauthenticated: 16,
    maxUncommitted: 8, maxUncommittedBytes: 16 * PAGE_SIZE, maxPins: 32, maxInFlightBytes: 256 * 1024,
  });
  const rss0 = process.memoryUsage().rss;
  let peakRss = rss0;
  const master = mulberry32(SEED);
  const open = new Set<Conn>();
  let ops = 0;
  let conns = 0;
  const deadline = Date.now() + RUN_MS;
  const worker = async (seed: number) => {
    const rnd = mulberry32(seed);
    while (Date.now() < deadline) {
      let c: Conn;
      try {
        c = await Conn.open(server.port);
      } catch {
        await sleep(5);
        continue;
      }
      conns++;
      open.add(c);
      if (rnd() < 0.9) await c.auth(WRITERS[Math.floor(rnd() * WRITERS.length)]!);
      const n = Math.floor(rnd() * 40);
      let keep = true;
      for (let i = 0; i < n && keep && !c.closed && Date.now() < deadline; i++) {
        keep = randomFrame(c, rnd);
        ops++;
        if (rnd() < 0.3) await sleep(rnd() * 3);
      }
      const end = rnd();
      if (keep && end < 0.5) c.sock.destroy();
      else if (keep && end < 0.8) c.sock.end();
      // else: left open (idle, mid-frame or not reading): the server's timeouts must close it
      if (open.size > 48) for (const o of [...open].slice(0, 8)) o.sock.destroy(), open.delete(o);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      await sleep(rnd() * 5);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, () => worker(Math.floor(master() * 2 ** 31))));
  const s1 = server.stats();
  // the abandoned ones are closed by the server's own timeouts
  const t0 = Date.now();
  while (server.stats().connections > 0 && Date.now() - t0 < 10_000) await sleep(20);
  const closedByServerMs = Date.now() - t0;
  assert.equal(server.stats().connections, 0, 'every abandoned connection timed out');
  for (const o of open) o.sock.destroy();
  await sleep(200); // quarantine of the last uncommitted allocations
  let st = server.stats();
  assert.equal(st.pins, 0, 'no pins once every client has left');
  assert.equal(st.pinnedChunks, 0, JSON.stringify(st));
  assert.equal(st.writing, 0, 'no allocation left');
  assert.equal(st.quarantined, 0);
  server.checkIntegrity();
  // each writer deletes what it committed: then the pool is empty
  const chunksLeft = st.chunks;
  for (const w of WRITERS) {
    const c = await Conn.open(server.port);
    assert.ok(await c.auth(w));
    const all = [...KEYS, Buffer.alloc(KEY_BYTES)]; // the all-zero key: what zero-filled malformed frames name
    all.forEach((k, i) => c.send(Op.DELETE, k, 100 + i));
    for (let i = 0; i < all.length; i++) await c.reply(100 + i);
    c.sock.destroy();
  }
  await sleep(50);
  st = server.stats();
  assert.equal(st.usedBytes, 0, 'no byte leaked');
  assert.equal(st.chunks, 0);
  assert.equal(st.allocatedBytes, 0);
  server.checkIntegrity();
  const rss1 = process.memoryUsage().rss;
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  console.log(
    `kv-fuzz: ${ops} ops over ${conns} connections in ${RUN_MS} ms (${Math.round((ops * 1000) / RUN_MS)} ops/s); ` +
      `RSS before ${mib(rss0)} MiB, peak ${mib(peakRss)} MiB, after ${mib(rss1)} MiB; chunks committed ${chunksLeft}, evictions ${s1.evictions}; ` +
      `server closed ${s1.timeouts} on timeout, refused ${s1.refusedConnections}, auth failures ${s1.authFailures}, forbidden ${s1.forbidden}, limited ${s1.limited}; ` +
      `last abandoned connection closed ${closedByServerMs} ms after the run`,
  );
  assert.ok(peakRss - rss0 < 256 * 2 ** 20, `RSS grew by ${mib(peakRss - rss0)} MiB`);
});
