// The tcp transport: the shared conformance suite, then what is tcp's own (striping over connections,
// hostile bytes on the listener).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { assertBlocksEqual, patternRegion, runTransportConformance } from './conformance.js';
import { TcpTransport } from './tcp-transport.js';
import { header, Frame, MAX_CONTROL_BYTES } from './tcp-frames.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

runTransportConformance('tcp', (o) => new TcpTransport({ ...o, log: quiet, connectionsPerPeer: 3 }));

describe('TcpTransport (tcp specifics)', () => {
  it('stripes one block list over connectionsPerPeer connections, byte-exact', async () => {
    const key = randomBytes(32);
    const src = patternRegion(128, 5);
    const A = new TcpTransport({ key, log: quiet });
    A.registerRegion(src);
    const addr = await A.listen();
    const dst = patternRegion(128, 0);
    const B = new TcpTransport({ key, log: quiet, connectionsPerPeer: 5, maxOpBytes: 4 * 6 * 8 * 256 });
    B.registerRegion(dst);
    try {
      const all = Int32Array.from({ length: 128 }, (_, i) => 127 - i);
      const r = await B.read(addr, all, all, { requestId: 'stripe', timeoutMs: 10_000 });
      assert.equal(r.connections, 5);
      assert.equal(B.stats().connections, 5);
      assertBlocksEqual(src, all, dst, all);
      const back = patternRegion(128, 9);
      dst.bytes.set(back.bytes);
      await B.write(addr, all, all, { requestId: 'stripe-w', timeoutMs: 10_000 });
      assertBlocksEqual(back, all, src, all);
    } finally {
      await Promise.all([A.close(), B.close()]);
    }
  });

  it('a WRITE whose target is revoked mid-stream (ServeHooks.writable false) lands no further byte and is refused', async () => {
    const key = randomBytes(32);
    const N = 256;
    let pieces = 0;
    let open = true;
    const dst = patternRegion(N, 0, {}, 4096);
    const A = new TcpTransport({
      key,
      log: quiet,
      hooks: {
        writable: () => {
          pieces++;
          if (pieces > 2) open = false;
          return open;
        },
      },
    });
    A.registerRegion(dst);
    const addr = await A.listen();
    const src = patternRegion(N, 13, {}, 4096);
    const B = new TcpTransport({ key, log: quiet, connectionsPerPeer: 1 });
    B.registerRegion(src);
    try {
      const all = Int32Array.from({ length: N }, (_, i) => i);
      await assert.rejects(B.write(addr, all, all, { requestId: 'revoked', timeoutMs: 10_000 }), /revoked/);
      assert.ok(pieces > 2, 'the write arrived in several pieces');
      // the region's last row (the end of the wire order) never got a byte
      const seg = dst.layout.blockSize * dst.layout.rowBytes;
      const lastRow = dst.bytes.subarray((2 * dst.layout.numLayers - 1) * N * seg);
      assert.ok(lastRow.every((x) => x === 0), 'bytes landed after the revocation');
    } finally {
      await Promise.all([A.close(), B.close()]);
    }
  });

  it('hostile bytes (garbage, bad magic, oversized control frames, early DATA) close that connection only; the listener keeps serving', async () => {
    const key = randomBytes(32);
    const src = patternRegion(8, 3);
    const A = new TcpTransport({ key, log: quiet, handshakeTimeoutMs: 1000 });
    A.registerRegion(src);
    const addr = await A.listen();
    const payloads: Buffer[] = [
      randomBytes(4096),
      Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n')]),
      header(Frame.HELLO, 0, MAX_CONTROL_BYTES + 1),
      header(Frame.HELLO, 0, 0xffffffff),
      Buffer.concat([header(Frame.DATA, 0, 1 << 30), randomBytes(1024)]),
      Buffer.concat([header(Frame.READ, 1, 10), randomBytes(10)]),
    ];
    for (let i = 0; i < 40; i++) payloads.push(Buffer.concat([header((i % 10) + 1, i, i * 7), randomBytes(i * 7)]));
    const closed = (p: Buffer) =>
      new Promise<void>((resolve) => {
        const s = net.connect(addr.port, addr.host, () => s.write(p));
        s.on('data', () => undefined);
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
    const t0 = Date.now();
    await Promise.all(payloads.map(closed));
    assert.ok(Date.now() - t0 < 10_000, 'each hostile connection is closed within the handshake timeout');
    assert.equal(A.stats().serving, 0);
    const B = new TcpTransport({ key, log: quiet });
    const dst = patternRegion(8, 0);
    B.registerRegion(dst);
    try {
      await B.read(addr, Int32Array.of(1, 2), Int32Array.of(1, 2), { requestId: 'after', timeoutMs: 10_000 });
      assertBlocksEqual(src, [1, 2], dst, [1, 2]);
    } finally {
      await Promise.all([A.close(), B.close()]);
    }
  });
});
