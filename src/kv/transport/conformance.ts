// The one behaviour suite every KvTransport runs (called from each implementation's test file, like
// tiers/conformance.ts). The factory builds an unstarted transport from a key, a region and hooks; the
// suite registers the region, listens, and closes what it made. Every wait is bounded (timeoutMs on
// each op), so a broken implementation fails a test instead of hanging the run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { fillPattern } from './pattern.js';
import { KvTransportError, type KvIdentity, type KvRegion, type KvTransport, type NotifyKind, type PeerAddress, type ServeHooks } from './transport.js';

export interface TransportMakeOptions {
  key: Buffer;
  hooks?: ServeHooks;
  instanceId?: string;
  /** fixed listen port (restart test); default any */
  port?: number;
}

export type TransportMaker = (o: TransportMakeOptions) => KvTransport;

const ID: KvIdentity = { model: 'conformance-model', kvDtype: 'bf16', numLayers: 3, numKvHeads: 2, headDim: 64, blockSize: 8 };
const ROW_BYTES = 2 * 64 * 2;

/** A region of `numBlocks` blocks; seed 0 = zeros, else a pattern unique per (seed, byte offset). */
export function patternRegion(numBlocks: number, seed: number, id: Partial<KvIdentity> = {}, rowBytes = ROW_BYTES): KvRegion {
  const identity = { ...ID, ...id };
  const layout = { numBlocks, blockSize: identity.blockSize, numLayers: identity.numLayers, rowBytes };
  const bytes = new Uint8Array(2 * layout.numLayers * numBlocks * layout.blockSize * rowBytes);
  if (seed) fillPattern(bytes, seed);
  return { identity, layout, bytes };
}


/** Bytes of block b of row r. */
export function blockBytes(r: KvRegion, row: number, b: number): Buffer {
  const seg = r.layout.blockSize * r.layout.rowBytes;
  const off = (row * r.layout.numBlocks + b) * seg;
  return Buffer.from(r.bytes.buffer, r.bytes.byteOffset + off, seg);
}

/** Asserts local blocks local[i] equal remote blocks remote[i] in every row. */
export function assertBlocksEqual(src: KvRegion, srcIds: ArrayLike<number>, dst: KvRegion, dstIds: ArrayLike<number>): void {
  for (let row = 0; row < 2 * src.layout.numLayers; row++)
    for (let i = 0; i < srcIds.length; i++)
      assert.ok(blockBytes(src, row, srcIds[i]!).equals(blockBytes(dst, row, dstIds[i]!)), `row ${row}: block ${srcIds[i]} != block ${dstIds[i]}`);
}

const ids = (...a: number[]) => Int32Array.from(a);
const isReason = (reason: KvTransportError['reason'], re?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof KvTransportError, `expected a KvTransportError, got ${String(e)}`);
  assert.equal(e.reason, reason, e.message);
  if (re) assert.match(e.message, re);
  return true;
};

export function runTransportConformance(name: string, make: TransportMaker): void {
  describe(`KvTransport conformance: ${name}`, () => {
    const OP = { timeoutMs: 10_000 };

    async function serve(region: KvRegion, o: Omit<TransportMakeOptions, 'key'> & { key: Buffer }): Promise<{ t: KvTransport; addr: PeerAddress }> {
      const t = make(o);
      t.registerRegion(region);
      const a = await t.listen();
      return { t, addr: { host: a.host, port: a.port } };
    }
    function client(region: KvRegion, key: Buffer): KvTransport {
      const t = make({ key });
      t.registerRegion(region);
      return t;
    }
    /** Runs body, then checks nothing is in flight and closes everything. */
    async function withAll(ts: KvTransport[], body: () => Promise<void>): Promise<void> {
      try {
        await body();
        for (const t of ts) assert.equal(t.stats().inFlight, 0, `${t.instanceId}: transfers still in flight`);
      } finally {
        await Promise.all(ts.map((t) => t.close()));
      }
      for (const t of ts) assert.deepEqual({ ...t.stats() }, { peers: 0, connections: 0, serving: 0, inFlight: 0 });
    }

    it('handshake: the peer instance id, identity and layout; the link is reused across requests', async () => {
      const key = randomBytes(32);
      const src = patternRegion(16, 1);
      const { t: A, addr } = await serve(src, { key, instanceId: 'prefiller-1' });
      const B = client(patternRegion(4, 0), key);
      await withAll([A, B], async () => {
        const p = await B.handshake(addr);
        assert.equal(p.instanceId, 'prefiller-1');
        assert.deepEqual(p.identity, src.identity);
        assert.deepEqual(p.layout, src.layout);
        assert.equal(typeof p.compatHash, 'string');
        const c1 = B.stats().connections;
        assert.ok(c1 >= 1);
        await B.read(addr, ids(1), ids(0), { requestId: 'r1', ...OP });
        await B.read(addr, ids(2), ids(1), { requestId: 'r2', ...OP });
        assert.equal(B.stats().connections, c1, 'no new connections for later requests');
        assert.equal((await B.handshake(addr)).instanceId, 'prefiller-1');
      });
    });

    it('read: scattered block lists (runs, reversed, gaps) land byte-exact; other blocks untouched', async () => {
      const key = randomBytes(32);
      const src = patternRegion(64, 7);
      const { t: A, addr } = await serve(src, { key });
      const dst = patternRegion(40, 0);
      const B = client(dst, key);
      await withAll([A, B], async () => {
        const remote = ids(10, 11, 12, 13, 63, 0, 30, 29, 28, 5);
        const local = ids(0, 1, 2, 3, 39, 20, 21, 22, 23, 30);
        const r = await B.read(addr, remote, local, { requestId: 'req-read', ...OP });
        assert.equal(r.bytes, remote.length * 2 * ID.numLayers * ID.blockSize * ROW_BYTES);
        assertBlocksEqual(src, remote, dst, local);
        const touched = new Set(local);
        for (let b = 0; b < 40; b++)
          if (!touched.has(b)) for (let row = 0; row < 6; row++) assert.ok(blockBytes(dst, row, b).every((x) => x === 0), `block ${b} was written`);
      });
    });

    it('write: local blocks land byte-exact in the peer; the peer learns which blocks landed', async () => {
      const key = randomBytes(32);
      const landed: string[] = [];
      const dst = patternRegion(32, 0);
      const { t: A, addr } = await serve(dst, { key, hooks: { onWritten: (req, b) => landed.push(`${req}:${[...b].join(',')}`) } });
      const src = patternRegion(16, 3);
      const B = client(src, key);
      await withAll([A, B], async () => {
        await B.write(addr, ids(15, 0, 1, 2), ids(31, 4, 5, 6), { requestId: 'req-w', ...OP });
        assertBlocksEqual(src, ids(15, 0, 1, 2), dst, ids(31, 4, 5, 6));
        assert.ok(landed.length >= 1);
        assert.deepEqual(new Set(landed.flatMap((s) => s.split(':')[1]!.split(',').map(Number))), new Set([31, 4, 5, 6]));
        assert.ok(landed.every((s) => s.startsWith('req-w:')));
      });
    });

    it('notify: done, heartbeat and abort reach the peer, which answers whether they matched', async () => {
      const key = randomBytes(32);
      const seen: string[] = [];
      const { t: A, addr } = await serve(patternRegion(4, 1), { key, hooks: { onNotify: (k, req) => (seen.push(`${k}:${req}`), req === 'known') } });
      const B = client(patternRegion(4, 0), key);
      await withAll([A, B], async () => {
        const kinds: NotifyKind[] = ['heartbeat', 'done', 'abort'];
        for (const k of kinds) assert.equal(await B.notify(addr, k, 'known'), true);
        assert.equal(await B.notify(addr, 'done', 'unknown'), false);
        assert.deepEqual(seen, ['heartbeat:known', 'done:known', 'abort:known', 'done:unknown']);
      });
    });

    it('authorize: a refused read or write fails with reason refused, touches nothing, and the link stays usable', async () => {
      const key = randomBytes(32);
      const served = patternRegion(8, 5);
      const before = Buffer.from(served.bytes);
      const hooks: ServeHooks = { authorize: (_op, req) => (req === 'leased' ? true : `no KV lease for request ${req}`) };
      const { t: A, addr } = await serve(served, { key, hooks });
      const dst = patternRegion(8, 0);
      const B = client(dst, key);
      await withAll([A, B], async () => {
        await assert.rejects(B.read(addr, ids(1), ids(1), { requestId: 'stranger', ...OP }), isReason('refused', /no KV lease for request stranger/));
        assert.ok(Buffer.from(dst.bytes).every((x) => x === 0));
        await assert.rejects(B.write(addr, ids(1), ids(1), { requestId: 'stranger', ...OP }), isReason('refused'));
        assert.ok(Buffer.from(served.bytes).equals(before), 'a refused write must not land');
        await B.read(addr, ids(3), ids(2), { requestId: 'leased', ...OP });
        assertBlocksEqual(served, ids(3), dst, ids(2));
      });
    });

    it('a peer without the internal secret can neither read, write nor release (notify) blocks', async () => {
      const key = randomBytes(32);
      let hookCalls = 0;
      const hooks: ServeHooks = {
        authorize: () => (hookCalls++, true),
        onNotify: () => (hookCalls++, true),
        onWritten: () => void hookCalls++,
      };
      const served = patternRegion(8, 9);
      const before = Buffer.from(served.bytes);
      const { t: A, addr } = await serve(served, { key, hooks });
      const dst = patternRegion(8, 0);
      const X = client(dst, randomBytes(32));
      const src = patternRegion(8, 4);
      const Y = client(src, randomBytes(32));
      await withAll([A, X, Y], async () => {
        await assert.rejects(X.read(addr, ids(1), ids(1), { requestId: 'r', ...OP }), isReason('auth'));
        await assert.rejects(Y.write(addr, ids(1), ids(1), { requestId: 'r', ...OP }), isReason('auth'));
        await assert.rejects(X.notify(addr, 'done', 'r'), isReason('auth'));
        await assert.rejects(X.notify(addr, 'abort', 'r'), isReason('auth'));
        await assert.rejects(X.handshake(addr), isReason('auth'));
        assert.equal(hookCalls, 0, 'no hook may run for an unauthenticated peer');
        assert.ok(Buffer.from(dst.bytes).every((x) => x === 0));
        assert.ok(Buffer.from(served.bytes).equals(before));
      });
    });

    const mismatches: Array<[string, Partial<KvIdentity>, RegExp]> = [
      ['model', { model: 'another-model' }, /mismatch in model.*conformance-model.*another-model/],
      ['dtype', { kvDtype: 'f16' }, /mismatch in kvDtype.*bf16.*f16/],
      ['layers', { numLayers: 4 }, /mismatch in numLayers/],
      ['kv heads', { numKvHeads: 4 }, /mismatch in numKvHeads/],
      ['head size', { headDim: 128 }, /mismatch in headDim/],
      ['block size', { blockSize: 16 }, /block size mismatch: local (8|16), peer (16|8).*heterogeneous block sizes are not supported/],
    ];
    for (const [what, id, re] of mismatches)
      it(`handshake refuses a peer with another ${what}, naming the field (never a hang)`, async () => {
        const key = randomBytes(32);
        let hookCalls = 0;
        const { t: A, addr } = await serve(patternRegion(4, 1), { key, hooks: { authorize: () => (hookCalls++, true) } });
        const B = client(patternRegion(4, 0, id), key);
        await withAll([A, B], async () => {
          const t0 = Date.now();
          await assert.rejects(B.handshake(addr, 5000), isReason('mismatch', re));
          await assert.rejects(B.read(addr, ids(0), ids(0), { requestId: 'r', ...OP }), isReason('mismatch', re));
          assert.ok(Date.now() - t0 < 5000);
          assert.equal(hookCalls, 0);
        });
      });

    it('block ids out of range and list length mismatches are refused', async () => {
      const key = randomBytes(32);
      const { t: A, addr } = await serve(patternRegion(8, 1), { key });
      const B = client(patternRegion(4, 0), key);
      await withAll([A, B], async () => {
        await assert.rejects(B.read(addr, ids(8), ids(0), { requestId: 'r', ...OP }), /out of range/);
        await assert.rejects(B.read(addr, ids(-1), ids(0), { requestId: 'r', ...OP }), /out of range/);
        await assert.rejects(B.read(addr, ids(0), ids(4), { requestId: 'r', ...OP }), /out of range/);
        await assert.rejects(B.write(addr, ids(0), ids(9), { requestId: 'r', ...OP }), /out of range/);
        await assert.rejects(B.read(addr, ids(0, 1), ids(0), { requestId: 'r', ...OP }), isReason('protocol'));
        await B.read(addr, ids(7), ids(3), { requestId: 'r', ...OP });
      });
    });

    it('a frozen peer (accepts, never answers): rejected with reason timeout within the timeout, nothing held', async () => {
      const key = randomBytes(32);
      const socks = new Set<net.Socket>();
      const frozen = net.createServer((s) => void socks.add(s.on('error', () => undefined)));
      await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', () => r()));
      const port = (frozen.address() as net.AddressInfo).port;
      const B = client(patternRegion(4, 0), key);
      try {
        await withAll([B], async () => {
          const t0 = Date.now();
          await assert.rejects(B.read({ host: '127.0.0.1', port }, ids(0), ids(0), { requestId: 'r', timeoutMs: 400 }), isReason('timeout'));
          assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`);
          await assert.rejects(B.notify({ host: '127.0.0.1', port }, 'done', 'r', { timeoutMs: 300 }), isReason('timeout'));
        });
      } finally {
        for (const s of socks) s.destroy();
        await new Promise((r) => frozen.close(r));
      }
    });

    it('a dead peer (nothing listening): rejected at once, not after the timeout', async () => {
      const probe = net.createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
      const port = (probe.address() as net.AddressInfo).port;
      await new Promise((r) => probe.close(r));
      const B = client(patternRegion(4, 0), randomBytes(32));
      await withAll([B], async () => {
        const t0 = Date.now();
        await assert.rejects(B.read({ host: '127.0.0.1', port }, ids(0), ids(0), { requestId: 'r', timeoutMs: 20_000 }), isReason('closed'));
        assert.ok(Date.now() - t0 < 10_000);
      });
    });

    it('an abort signal stops a transfer with reason aborted', async () => {
      const key = randomBytes(32);
      const { t: A, addr } = await serve(patternRegion(4, 1), { key });
      const B = client(patternRegion(4, 0), key);
      await withAll([A, B], async () => {
        const ac = new AbortController();
        ac.abort();
        await assert.rejects(B.read(addr, ids(0), ids(0), { requestId: 'r', ...OP, signal: ac.signal }), isReason('aborted'));
        await B.read(addr, ids(1), ids(1), { requestId: 'r', ...OP }); // the transport is still fine
      });
    });

    it('the peer dying mid-transfer: an error (not a hang, not a partial success); the client holds nothing', async () => {
      const key = randomBytes(32);
      const big = patternRegion(256, 2, {}, 16 * 1024); // 256 blocks x 6 rows x 128 KiB = 192 MiB
      let A: KvTransport | null = null;
      const hooks: ServeHooks = { authorize: () => (setImmediate(() => void A?.close()), true) };
      const s = await serve(big, { key, hooks });
      A = s.t;
      const B = client(patternRegion(256, 0, {}, 16 * 1024), key);
      await withAll([A, B], async () => {
        const all = Int32Array.from({ length: 256 }, (_, i) => i);
        const t0 = Date.now();
        await assert.rejects(B.read(s.addr, all, all, { requestId: 'r', timeoutMs: 15_000 }), (e: KvTransportError) => e instanceof KvTransportError && ['closed', 'timeout'].includes(e.reason));
        assert.ok(Date.now() - t0 < 15_000);
        assert.equal(B.stats().connections, 0, 'connections to a dead peer are dropped');
      });
    });

    it('a restarted peer (new instance id, same address): fresh handshake; an op naming the old instance is refused', async () => {
      const key = randomBytes(32);
      const first = await serve(patternRegion(8, 1), { key, instanceId: 'inst-old' });
      const port = first.addr.port;
      const dst = patternRegion(8, 0);
      const B = client(dst, key);
      let second: KvTransport | null = null;
      try {
        await B.read({ ...first.addr, instanceId: 'inst-old' }, ids(1), ids(1), { requestId: 'r', ...OP });
        await first.t.close();
        const src2 = patternRegion(8, 2);
        const s2 = await serve(src2, { key, instanceId: 'inst-new', port });
        second = s2.t;
        await assert.rejects(B.read({ ...s2.addr, instanceId: 'inst-old' }, ids(1), ids(1), { requestId: 'r', ...OP }), isReason('restarted', /inst-old/));
        const p = await B.handshake(s2.addr);
        assert.equal(p.instanceId, 'inst-new');
        await B.read({ ...s2.addr, instanceId: 'inst-new' }, ids(2, 3), ids(2, 3), { requestId: 'r2', ...OP });
        assertBlocksEqual(src2, ids(2, 3), dst, ids(2, 3));
        assert.equal(B.stats().inFlight, 0);
      } finally {
        await Promise.all([first.t.close(), B.close(), second?.close()]);
      }
    });

    it('concurrent transfers from two clients and several requests on one link keep every byte straight', async () => {
      const key = randomBytes(32);
      const src = patternRegion(64, 11);
      const { t: A, addr } = await serve(src, { key });
      const d1 = patternRegion(64, 0);
      const d2 = patternRegion(64, 0);
      const B = client(d1, key);
      const C = client(d2, key);
      await withAll([A, B, C], async () => {
        const jobs: Promise<unknown>[] = [];
        for (let k = 0; k < 8; k++) {
          const r = Int32Array.from({ length: 8 }, (_, i) => (k * 8 + i * 3) % 64);
          const l = Int32Array.from({ length: 8 }, (_, i) => k * 8 + i);
          jobs.push(B.read(addr, r, l, { requestId: `b${k}`, ...OP }).then(() => assertBlocksEqual(src, r, d1, l)));
          const l2 = l.map((x) => 63 - x);
          jobs.push(C.read(addr, l, l2, { requestId: `c${k}`, ...OP }).then(() => assertBlocksEqual(src, l, d2, l2)));
        }
        await Promise.all(jobs);
      });
    });
  });
}
