// First tcp transport tests (the shared conformance suite, conformance.ts, is still to be written).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TcpTransport } from './tcp-transport.js';
import { KvTransportError, type KvRegion } from './transport.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
function region(numBlocks: number, kvDtype = 'bf16', seed = 0): KvRegion {
  const layout = { numBlocks, blockSize: 16, numLayers: 4, rowBytes: 8 * 128 * 2 };
  const bytes = new Uint8Array(2 * 4 * numBlocks * 16 * layout.rowBytes);
  if (seed) for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + seed) & 255;
  return { identity: { model: 'm', kvDtype, numLayers: 4, numKvHeads: 8, headDim: 128, blockSize: 16 }, layout, bytes };
}
const seg = 16 * 8 * 128 * 2;
const block = (r: KvRegion, row: number, b: number) => Buffer.from(r.bytes.subarray((row * r.layout.numBlocks + b) * seg, (row * r.layout.numBlocks + b + 1) * seg));

describe('TcpTransport', () => {
  it('reads and writes block lists byte-exactly, notifies, refuses a peer without the secret and a dtype mismatch', async () => {
    const key = randomBytes(32);
    const notes: string[] = [];
    const A = new TcpTransport({ key, log: quiet, hooks: { onNotify: (k, r) => (notes.push(`${k}:${r}`), true) } });
    const ra = region(64, 'bf16', 3);
    A.registerRegion(ra);
    const addr = await A.listen();
    const B = new TcpTransport({ key, log: quiet });
    const rb = region(32);
    B.registerRegion(rb);
    const C = new TcpTransport({ key: randomBytes(32), log: quiet });
    C.registerRegion(region(8));
    const D = new TcpTransport({ key, log: quiet });
    D.registerRegion(region(8, 'f16'));
    try {
      const remote = Int32Array.of(5, 6, 7, 20, 2);
      const local = Int32Array.of(0, 1, 9, 10, 31);
      const r = await B.read(addr, remote, local, { requestId: 'req1' });
      assert.equal(r.bytes, 5 * 8 * seg);
      for (let row = 0; row < 8; row++) for (let i = 0; i < 5; i++) assert.ok(block(ra, row, remote[i]!).equals(block(rb, row, local[i]!)));
      rb.bytes.fill(9);
      await B.write(addr, Int32Array.of(1), Int32Array.of(40), { requestId: 'req2' });
      for (let row = 0; row < 8; row++) assert.ok(block(ra, row, 40).equals(Buffer.alloc(seg, 9)));
      assert.equal(await B.notify(addr, 'done', 'req1'), true);
      assert.deepEqual(notes, ['done:req1']);
      await assert.rejects(C.read(addr, Int32Array.of(1), Int32Array.of(1), { requestId: 'x' }), (e: KvTransportError) => e.reason === 'auth');
      await assert.rejects(D.handshake(addr), (e: KvTransportError) => e.reason === 'mismatch' && /kvDtype/.test(e.message));
      await assert.rejects(B.read(addr, Int32Array.of(64), Int32Array.of(0), { requestId: 'y' }), /out of range/);
    } finally {
      await Promise.all([A.close(), B.close(), C.close(), D.close()]);
    }
  });
});
