// The tcp KV transport between real processes: on loopback (this process reads from and writes into a
// serving child, byte-exact), and between two network namespaces joined by a veth pair (a serving
// child in one, a reading child in the other), with the link cut mid-transfer: the reader fails within
// its timeout, both sides drop what they held, and after the link is back a fresh read works.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateInternalSecretFile } from '../../src/security/internal-secret.js';
import { assertBlocksEqual } from '../../src/kv/transport/conformance.js';
import { createNetnsPair, netnsUnavailable, type NetnsPair } from '../../src/kv/transport/netns.js';
import { spawnPeer, type PeerHandle } from '../../src/kv/transport/peer-handle.js';
import { regionOfShape, type PeerShape } from '../../src/kv/transport/pattern.js';
import { TcpTransport } from '../../src/kv/transport/tcp-transport.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const SMALL: PeerShape = { model: 'peers-test', kvDtype: 'bf16', numLayers: 4, numKvHeads: 2, headDim: 64, blockSize: 16, numBlocks: 48 };
// 256 blocks x 8 rows x 16 tokens x 2 KiB = 64 MiB, 16 MiB per connection (more than the kernel's socket
// buffers, so the server is still sending when the link goes); at 40 Mbit/s that is 13 s, so the cut
// lands mid-transfer
const CUT: PeerShape = { ...SMALL, numKvHeads: 8, headDim: 128, numBlocks: 256 };

let dir = '';
let secretFile = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pds-kv-peers-'));
  secretFile = join(dir, 'secret');
  generateInternalSecretFile(secretFile);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const stopAll = (hs: Array<PeerHandle | null>) => Promise.all(hs.map((h) => h?.stop()));

describe('tcp KV transport between processes', { timeout: 120_000 }, () => {
  it('loopback: a serving child; this process reads and writes scattered blocks byte-exactly', async () => {
    const srv = spawnPeer([], 'serve', ['--internal-secret-file', secretFile, '--shape', JSON.stringify(SMALL), '--seed', '21']);
    const key = (await import('../../src/security/internal-secret.js')).loadInternalSecret(secretFile).key;
    const local = regionOfShape(SMALL, 0);
    local.bytes.fill(0);
    const t = new TcpTransport({ key, log: quiet, connectionsPerPeer: 3 });
    t.registerRegion(local);
    try {
      const l = await srv.next((e) => e.event === 'listening', 30_000);
      const peer = { host: '127.0.0.1', port: l.port as number, instanceId: l.instanceId as string };
      const want = regionOfShape(SMALL, 21);
      const remote = Int32Array.of(47, 0, 1, 2, 3, 20, 19, 30);
      const mine = Int32Array.of(0, 10, 11, 12, 13, 40, 41, 5);
      await t.read(peer, remote, mine, { requestId: 'two-proc', timeoutMs: 20_000 });
      assertBlocksEqual(want, remote, local, mine);
      // push our own bytes into the child, read them back into other blocks
      const ours = regionOfShape(SMALL, 77);
      local.bytes.set(ours.bytes);
      await t.write(peer, Int32Array.of(3, 4, 5), Int32Array.of(10, 11, 12), { requestId: 'two-proc-w', timeoutMs: 20_000 });
      local.bytes.fill(0);
      await t.read(peer, Int32Array.of(10, 11, 12), Int32Array.of(30, 31, 32), { requestId: 'two-proc-r', timeoutMs: 20_000 });
      assertBlocksEqual(ours, [3, 4, 5], local, [30, 31, 32]);
      const n = srv.events.length;
      srv.send('stats');
      const st = await srv.next((e) => e.event === 'stats', 10_000, n);
      assert.equal(st.inFlight, 0);
    } finally {
      await t.close();
      await srv.stop();
    }
  });

  describe('two network namespaces joined by a veth pair', () => {
    const why = netnsUnavailable();
    if (why) {
      it(`SKIP two-namespace tests: ${why}`, { skip: why }, () => undefined);
      return;
    }
    let pair: NetnsPair | null = null;
    before(() => {
      pair = createNetnsPair('t');
    });
    after(() => pair?.remove());

    it('a reader in one namespace pulls every block from a server in the other, byte-exact', async () => {
      const p = pair!;
      const shape = JSON.stringify(SMALL);
      const srv = spawnPeer(p.execIn(p.nsA), 'serve', ['--internal-secret-file', secretFile, '--host', p.addrA, '--shape', shape, '--seed', '33']);
      let rd: PeerHandle | null = null;
      try {
        const l = await srv.next((e) => e.event === 'listening', 30_000);
        assert.equal(l.host, p.addrA);
        rd = spawnPeer(p.execIn(p.nsB), 'read', ['--internal-secret-file', secretFile, '--peer', `${p.addrA}:${l.port}`, '--shape', shape, '--verify-seed', '33', '--iters', '2']);
        const v = await rd.next((e) => e.event === 'verified' || e.event === 'error', 60_000);
        assert.deepEqual(v, { event: 'verified', ok: true });
        assert.equal(rd.events.filter((e) => e.event === 'read').length, 2);
        // this process (outside both namespaces) cannot reach the server: the namespaces are closed worlds
        const key = (await import('../../src/security/internal-secret.js')).loadInternalSecret(secretFile).key;
        const outsider = new TcpTransport({ key, log: quiet, connectTimeoutMs: 1500 });
        outsider.registerRegion(regionOfShape(SMALL, 0));
        await assert.rejects(outsider.handshake({ host: p.addrA, port: l.port as number }, 2500));
        await outsider.close();
      } finally {
        await stopAll([rd, srv]);
      }
    });

    it('link cut mid-transfer: the reader fails within its timeout, both sides free everything; after the link is back a fresh read works', async () => {
      const p = pair!;
      const limited = p.limitRate(40);
      const shape = JSON.stringify(CUT);
      const srv = spawnPeer(p.execIn(p.nsA), 'serve', ['--internal-secret-file', secretFile, '--host', p.addrA, '--shape', shape, '--seed', '5', '--stall-ms', '1500']);
      let rd: PeerHandle | null = null;
      try {
        const l = await srv.next((e) => e.event === 'listening', 30_000);
        rd = spawnPeer(p.execIn(p.nsB), 'read', ['--internal-secret-file', secretFile, '--peer', `${p.addrA}:${l.port}`, '--shape', shape, '--timeout-ms', '3000', '--iters', '1']);
        await rd.next((e) => e.event === 'handshake', 30_000);
        await srv.next((e) => e.event === 'read-start', 30_000);
        p.cut();
        const t0 = Date.now();
        const r = await rd.next((e) => e.event === 'error' || e.event === 'read', 20_000);
        const waited = Date.now() - t0;
        if (r.event === 'read') assert.fail(`the transfer finished before the cut (rate limit ${limited ? 'on' : 'unavailable'}); cannot test the cut`);
        assert.equal(r.reason, 'timeout', String(r.message));
        assert.ok(waited < 3000 + 5000, `the reader waited ${waited} ms for a 3000 ms timeout`);
        const rs = await rd.next((e) => e.event === 'stats', 10_000);
        assert.equal(rs.inFlight, 0);
        assert.equal(rs.connections, 0, 'the reader dropped its connections to the cut peer');
        // the server's stalled sends are cut by its stall timeout (1.5 s): poll its stats
        const deadline = Date.now() + 15_000;
        let serving = -1;
        while (Date.now() < deadline) {
          const n = srv.events.length;
          srv.send('stats');
          serving = (await srv.next((e) => e.event === 'stats', 10_000, n)).serving as number;
          if (serving === 0) break;
          await new Promise((res) => setTimeout(res, 250));
        }
        assert.equal(serving, 0, 'the server still holds connections of the cut link');
        p.restore();
        p.limitRate(10_000);
        const n = rd.events.length;
        rd.send('again');
        const again = await rd.next((e) => e.event === 'read' || e.event === 'error', 30_000, n);
        assert.equal(again.event, 'read', JSON.stringify(again));
      } finally {
        p.restore();
        await stopAll([rd, srv]);
      }
    });
  });
});
