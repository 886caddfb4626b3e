import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { KvServer } from './kv-server.js';
import { FrameReader, HEADER_BYTES, MAGIC, Op, PAGE_SIZE, Status, encodeHeader, encodeKeyList, isReadError, keyToBytes, u64, type Frame } from './protocol.js';
import { PoolTier } from '../tiers/pool-tier.js';
import { clientAnswer, clientSession, decodeHelloReply, encodeAuth, type SessionInfo } from './kv-auth.js';
import { newNonce } from '../../security/handshake.js';

const CHUNK = 64 * 1024;
const key = (s: string) => createHash('sha256').update(s).digest('hex');
const started = new Set<KvServer>();
after(async () => {
  for (const s of started) await s.stop();
});

async function startServer(chunks: number, extra: { maxPayload?: number } = {}): Promise<KvServer> {
  const s = await KvServer.start({
    host: '127.0.0.1', port: 0, poolSize: PAGE_SIZE + chunks * CHUNK, quiet: true, allocQuarantineMs: 20,
    poolFile: `/dev/shm/pdserve-test-pool-${randomBytes(6).toString('hex')}`, ...extra,
  });
  started.add(s);
  return s;
}

/** A raw protocol connection: send frames (or bytes), read replies. */
class Raw {
  private frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  private reader = new FrameReader(2 ** 31);
  closed = false;
  private constructor(readonly sock: Socket) {
    sock.on('data', (c: Buffer) => {
      for (const f of this.reader.push(c)) if (!isReadError(f)) this.frames.push(f);
      this.wake();
    });
    sock.on('close', () => ((this.closed = true), this.wake()));
    sock.on('error', () => {});
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  session: SessionInfo | null = null;
  /** A connection that has passed HELLO + AUTH (auth=false: a bare socket). */
  static async open(port: number, o: { secret?: Buffer | null; writer?: Buffer; auth?: boolean } = {}): Promise<Raw> {
    const raw = await new Promise<Raw>((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' }, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
    if (o.auth === false) return raw;
    const cn = newNonce();
    const hr = decodeHelloReply((await raw.call(Op.HELLO, cn)).payload)!;
    const ans = clientAnswer(o.secret ?? null, cn, hr);
    assert.ok('proof' in ans, 'refused: ' + ('refuse' in ans ? ans.refuse : ''));
    const a = await raw.call(Op.AUTH, encodeAuth(ans.proof, o.writer ?? randomBytes(16)));
    assert.equal(a.status, Status.OK, a.payload.toString());
    raw.session = clientSession(o.secret ?? null, cn, hr.serverNonce, a.payload);
    return raw;
  }
  async next(): Promise<Frame | null> {
    while (!this.frames.length && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
    return this.frames.shift() ?? null;
  }
  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }
  async call(op: Op, ...parts: Buffer[]): Promise<Frame> {
    const len = parts.reduce((a, p) => a + p.length, 0);
    this.sock.write(Buffer.concat([encodeHeader(op, 0, 7, len), ...parts]));
    const f = await this.next();
    assert.ok(f, 'reply expected');
    return f;
  }
}

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('kv-server', () => {
  it('answers garbage with BAD_REQUEST, closes that connection, keeps serving others', async () => {
    const s = await startServer(2);
    const good = await Raw.open(s.port);
    const bad = await Raw.open(s.port);
    bad.sock.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const f = await bad.next();
    assert.equal(f?.status, Status.BAD_REQUEST);
    await bad.waitClosed();
    await waitFor(() => s.stats().connections === 1);
    const st = await good.call(Op.STATS);
    assert.equal(st.status, Status.OK);
    assert.equal(JSON.parse(st.payload.toString()).connections, 1);
    good.sock.destroy();
  });

  it('rejects oversized frames with TOO_LARGE and closes; bad version too', async () => {
    const s = await startServer(2, { maxPayload: 1024 });
    const c = await Raw.open(s.port);
    c.sock.write(encodeHeader(Op.PUT, 0, 3, 4096));
    const f = await c.next();
    assert.equal(f?.status, Status.TOO_LARGE);
    assert.equal(f?.reqId, 3);
    await c.waitClosed();
    const v = await Raw.open(s.port);
    const h = encodeHeader(Op.STATS, 0, 1, 0);
    h.writeUInt8(9, 4);
    v.sock.write(h);
    assert.equal((await v.next())?.status, Status.BAD_REQUEST);
    await v.waitClosed();
    const ok = await Raw.open(s.port);
    assert.equal((await ok.call(Op.STATS)).status, Status.OK);
    ok.sock.destroy();
  });

  it('survives truncated frames and malformed payloads; unknown opcodes get an error reply', async () => {
    const s = await startServer(2);
    const t1 = await Raw.open(s.port);
    t1.sock.end(encodeHeader(Op.ALLOC, 0, 1, 40).subarray(0, 9)); // half a header
    const t2 = await Raw.open(s.port);
    t2.sock.end(Buffer.concat([encodeHeader(Op.PUT, 0, 1, 1000), Buffer.alloc(100)])); // half a payload
    await t1.waitClosed();
    await t2.waitClosed();
    const c = await Raw.open(s.port);
    assert.equal((await c.call(Op.ALLOC, Buffer.alloc(5))).status, Status.BAD_REQUEST);
    assert.equal((await c.call(Op.LOOKUP, Buffer.from([1, 9, 0, 0, 0]))).status, Status.BAD_REQUEST);
    assert.equal((await c.call(99 as Op)).status, Status.BAD_REQUEST);
    assert.equal((await c.call(Op.ALLOC, keyToBytes(key('huge')), u64(2 ** 40))).status, Status.TOO_LARGE);
    assert.equal((await c.call(Op.COMMIT, keyToBytes(key('never')))).status, Status.NOT_FOUND);
    await waitFor(() => s.stats().usedBytes === 0); // the half-received PUT's space, after the quarantine
    const st = JSON.parse((await c.call(Op.STATS)).payload.toString());
    assert.equal(st.connections, 1);
    assert.equal(st.usedBytes, 0);
    c.sock.destroy();
    s.checkIntegrity();
  });

  it('reclaims the uncommitted allocations and pins of a client that dies', async () => {
    const s = await startServer(3);
    const a = await Raw.open(s.port);
    assert.equal((await a.call(Op.PUT, keyToBytes(key('kept')), Buffer.alloc(CHUNK, 1))).status, Status.OK);
    assert.equal((await a.call(Op.ALLOC, keyToBytes(key('half')), u64(CHUNK))).status, Status.OK);
    assert.equal((await a.call(Op.LOOKUP, encodeKeyList([key('kept')], 1))).payload.readUInt32LE(0), 1);
    assert.equal((await a.call(Op.GET_LOC, keyToBytes(key('kept')))).status, Status.OK);
    let st = s.stats();
    assert.equal(st.writing, 1);
    assert.equal(st.pinnedChunks, 1);
    a.sock.destroy(); // dies mid-write, holding two pins
    await waitFor(() => s.stats().connections === 0 && s.stats().writing === 0);
    st = s.stats();
    assert.equal(st.pinnedChunks, 0);
    assert.equal(st.chunks, 1, 'its committed chunk stays');
    assert.equal(st.usedBytes, CHUNK);
    s.checkIntegrity();
    // All of the pool is usable again: the committed chunk is evictable now.
    const b = await Raw.open(s.port);
    for (const k of ['x', 'y', 'z']) assert.equal((await b.call(Op.PUT, keyToBytes(key(k)), Buffer.alloc(CHUNK))).status, Status.OK);
    b.sock.destroy();
  });

  it('LRU eviction never evicts a chunk pinned by another client; FULL when all is pinned', async () => {
    const s = await startServer(2);
    const a = await Raw.open(s.port);
    const b = await Raw.open(s.port);
    await a.call(Op.PUT, keyToBytes(key('p')), Buffer.alloc(CHUNK, 7));
    await a.call(Op.LOOKUP, encodeKeyList([key('p')], 1));
    for (let i = 0; i < 5; i++) assert.equal((await b.call(Op.PUT, keyToBytes(key('q' + i)), Buffer.alloc(CHUNK))).status, Status.OK);
    const g = await b.call(Op.GET, keyToBytes(key('p')));
    assert.equal(g.status, Status.OK);
    assert.ok(g.payload.equals(Buffer.alloc(CHUNK, 7)));
    await b.call(Op.PIN, encodeKeyList([key('q4')]));
    assert.equal((await b.call(Op.ALLOC, keyToBytes(key('r')), u64(CHUNK))).status, Status.FULL);
    assert.equal((await a.call(Op.UNPIN, encodeKeyList([key('p')]))).payload.readUInt32LE(0), 1);
    assert.equal((await b.call(Op.ALLOC, keyToBytes(key('r')), u64(CHUNK))).status, Status.OK);
    assert.equal((await b.call(Op.LOOKUP, encodeKeyList([key('p')], 0))).payload.readUInt32LE(0), 0, 'p evicted once unpinned');
    a.sock.destroy();
    b.sock.destroy();
    await waitFor(() => s.stats().connections === 0);
    s.checkIntegrity();
  });

  it('frees a deleted chunk only when its last reader unpins (deferred free)', async () => {
    const s = await startServer(2);
    const a = await Raw.open(s.port);
    const b = await Raw.open(s.port);
    await b.call(Op.PUT, keyToBytes(key('d')), Buffer.alloc(CHUNK, 3));
    const loc = await a.call(Op.GET_LOC, keyToBytes(key('d')));
    assert.equal(loc.status, Status.OK);
    assert.equal((await b.call(Op.DELETE, keyToBytes(key('d')))).status, Status.OK);
    assert.equal(s.stats().deadPinned, 1);
    assert.equal((await b.call(Op.ALLOC, keyToBytes(key('big')), u64(2 * CHUNK))).status, Status.FULL);
    await a.call(Op.UNPIN, encodeKeyList([key('d')]));
    assert.equal(s.stats().deadPinned, 0);
    assert.equal((await b.call(Op.ALLOC, keyToBytes(key('big')), u64(2 * CHUNK))).status, Status.OK);
    a.sock.destroy();
    b.sock.destroy();
  });

  it('only a chunk\'s writer deletes it; deleting one\'s own allocation aborts it (no leak)', async () => {
    const s = await startServer(2);
    const w = await Raw.open(s.port);
    const d = await Raw.open(s.port);
    assert.equal((await w.call(Op.ALLOC, keyToBytes(key('w')), u64(CHUNK))).status, Status.OK);
    assert.equal((await d.call(Op.DELETE, keyToBytes(key('w')))).status, Status.NOT_FOUND, 'another writer\'s allocation is invisible');
    assert.equal((await d.call(Op.ALLOC, keyToBytes(key('big')), u64(2 * CHUNK))).status, Status.FULL, 'pages still owned by the writer');
    assert.equal((await w.call(Op.COMMIT, keyToBytes(key('w')))).status, Status.OK);
    assert.equal((await d.call(Op.DELETE, keyToBytes(key('w')))).status, Status.FORBIDDEN);
    assert.equal((await d.call(Op.PUT, keyToBytes(key('w')), Buffer.alloc(CHUNK, 7))).status, Status.EXISTS, 'no overwrite');
    // ALLOC k, DELETE k, ALLOC k, ... from one connection never pins pages forever
    for (let i = 0; i < 5; i++) {
      assert.equal((await d.call(Op.ALLOC, keyToBytes(key('k')), u64(CHUNK))).status, Status.OK);
      assert.equal((await d.call(Op.DELETE, keyToBytes(key('k')))).status, Status.OK);
    }
    assert.equal(s.stats().writing, 0);
    assert.equal((await w.call(Op.DELETE, keyToBytes(key('w')))).status, Status.OK, 'the writer may');
    assert.equal((await d.call(Op.ALLOC, keyToBytes(key('big')), u64(2 * CHUNK))).status, Status.OK, 'all pages came back');
    w.sock.destroy();
    d.sock.destroy();
    await waitFor(() => s.stats().connections === 0);
    await waitFor(() => s.stats().usedBytes === 0);
    s.checkIntegrity();
  });

  it('a writer id bound at AUTH keeps ownership across reconnects', async () => {
    const s = await startServer(2);
    const id = randomBytes(16);
    const a = await Raw.open(s.port, { writer: id });
    assert.equal((await a.call(Op.PUT, keyToBytes(key('o')), Buffer.alloc(CHUNK, 1))).status, Status.OK);
    a.sock.destroy();
    const b = await Raw.open(s.port, { writer: id });
    assert.equal((await b.call(Op.DELETE, keyToBytes(key('o')))).status, Status.OK);
    b.sock.destroy();
  });

  it('AUTH describes the pool; stop() removes the pool file', async () => {
    const s = await startServer(1);
    const c = await Raw.open(s.port);
    const h = c.session!;
    assert.equal(h.poolSize, PAGE_SIZE + CHUNK);
    assert.equal(h.poolFile, s.opts.poolFile);
    assert.equal(h.segmentSize, 4 * 2 ** 30, 'segment size');
    assert.ok(existsSync(s.opts.poolFile));
    c.sock.destroy();
    await s.stop();
    started.delete(s);
    assert.equal(existsSync(s.opts.poolFile), false);
    assert.equal(MAGIC, 0x564b4450);
    assert.equal(HEADER_BYTES, 16);
  });

  it('spreads a pool over several segment files; chunks stay contiguous; stop removes every file', async () => {
    const seg = 2 * CHUNK + PAGE_SIZE;
    const poolFile = `/dev/shm/pdserve-test-pool-${randomBytes(6).toString('hex')}`;
    const s = await KvServer.start({ host: '127.0.0.1', port: 0, poolSize: 3 * seg, segmentSize: seg, quiet: true, poolFile });
    started.add(s);
    assert.equal(s.stats().segments, 3);
    assert.ok(existsSync(poolFile + '.1') && existsSync(poolFile + '.2'));
    const shm = new PoolTier({ host: '127.0.0.1', port: s.port, transport: 'shm', timeoutMs: 2000, backoffMs: 50 });
    const tcp = new PoolTier({ host: '127.0.0.1', port: s.port, transport: 'tcp', timeoutMs: 2000, backoffMs: 50 });
    const data = (i: number) => Buffer.alloc(CHUNK, i + 1);
    for (let i = 0; i < 6; i++) assert.equal(await shm.put(key('s' + i), data(i)), true);
    assert.equal(s.stats().evictions, 0, 'six chunks fit three segments of two');
    for (let i = 0; i < 6; i++) {
      const h = (await tcp.get(key('s' + i)))!;
      assert.ok(Buffer.from(h.bytes).equals(data(i)), `chunk ${i} read back over TCP`);
      h.release();
    }
    const raw = await Raw.open(s.port);
    assert.equal((await raw.call(Op.ALLOC, keyToBytes(key('big')), u64(3 * CHUNK))).status, Status.TOO_LARGE);
    raw.sock.destroy();
    s.checkIntegrity();
    await shm.close();
    await tcp.close();
    await s.stop();
    started.delete(s);
    assert.ok(![poolFile, poolFile + '.1', poolFile + '.2'].some((f) => existsSync(f)));
  });

  it('a tier over a dead or hung kv-server reports 0 hits within its timeout', async () => {
    const dead = new PoolTier({ host: '127.0.0.1', port: 1, transport: 'auto', timeoutMs: 300, backoffMs: 50 });
    let t0 = Date.now();
    assert.equal(await dead.lookupPrefix([key('a')]), 0);
    assert.equal(await dead.lookupPrefix([key('a')]), 0);
    assert.ok(Date.now() - t0 < 1000);
    await dead.close();
    const socks: Socket[] = [];
    const hung = createServer((sk) => void socks.push(sk)); // accepts, never answers
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
    const port = (hung.address() as { port: number }).port;
    const slow = new PoolTier({ host: '127.0.0.1', port, transport: 'auto', timeoutMs: 300, backoffMs: 50 });
    t0 = Date.now();
    assert.equal(await slow.lookupPrefix([key('a')]), 0);
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    // Once it has failed, later calls do not wait on reconnect attempts (they run in the background).
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 60));
      t0 = Date.now();
      assert.equal(await slow.lookupPrefix([key('a')]), 0);
      assert.ok(Date.now() - t0 < 50, `lookup ${i} waited ${Date.now() - t0} ms on a down server`);
    }
    await assert.rejects(slow.put(key('a'), new Uint8Array(8)));
    await slow.close();
    for (const sk of socks) sk.destroy();
    await new Promise<void>((r) => hung.close(() => r()));
  });

  it('a tier reconnects after the kv-server restarts (and remaps the new pool)', async () => {
    const s1 = await startServer(2);
    const port = s1.port;
    const tier = new PoolTier({ host: '127.0.0.1', port, transport: 'auto', timeoutMs: 500, backoffMs: 20 });
    assert.equal(await tier.put(key('a'), new Uint8Array(CHUNK).fill(1)), true);
    await s1.stop();
    started.delete(s1);
    assert.equal(await tier.lookupPrefix([key('a')]), 0);
    const s2 = await KvServer.start({ host: '127.0.0.1', port, poolSize: PAGE_SIZE + 2 * CHUNK, quiet: true, poolFile: `/dev/shm/pdserve-test-pool-${randomBytes(6).toString('hex')}` });
    started.add(s2);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(await tier.put(key('b'), new Uint8Array(CHUNK).fill(2)), true);
    assert.equal(tier.mode, 'shm');
    const h = (await tier.get(key('b')))!;
    assert.ok(Buffer.from(h.bytes).equals(Buffer.alloc(CHUNK, 2)));
    h.release();
    await tier.close();
  });
});
