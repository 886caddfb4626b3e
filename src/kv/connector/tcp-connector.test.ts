// TcpConnector driven through the engine's connector calls, two real tcp transports on loopback over
// HostKvCache memory: pull byte-exact with the (P2P tcp) line, leases (done, expiry, heartbeats,
// abort, full prefix hit), allowlist, wrong secret and a dead prefiller (recompute, bounded in time).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ConnectorRequest } from '../../engine/connector/base.js';
import { captureLog, until } from './testing/helpers.js';
import { HostKvCache } from '../host-kv-cache.js';
import { fillPattern } from '../transport/pattern.js';
import { TcpConnector, tcpSourceOf, type TcpConnectorOptions } from './tcp-connector.js';
import { runConnectorConformance } from './testing/conformance.js';

const BS = 16;
const IDENT = { model: 'tiny', kvDtype: 'f32', numLayers: 2, numKvHeads: 2, headDim: 4 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prompt = (n: number) => Array.from({ length: n }, (_, i) => (i * 7) % 5000);
const req = (id: string, p: number[], blockIds: number[], kvTransferParams?: Record<string, unknown>, finishReason?: string): ConnectorRequest => ({
  requestId: id,
  promptTokenIds: p,
  numComputedTokens: 0,
  blockIds,
  ...(kvTransferParams ? { kvTransferParams } : {}),
  ...(finishReason ? { finishReason } : {}),
});

function pair(o: { key?: Buffer; consumerKey?: Buffer; leaseMs?: number; heartbeatMs?: number; allow?: string[] | null; loadTimeoutMs?: number } = {}) {
  const key = o.key ?? randomBytes(32);
  const plog = captureLog();
  const clog = captureLog();
  const base: Omit<TcpConnectorOptions, 'key' | 'log'> = { identity: IDENT, leaseMs: o.leaseMs, heartbeatMs: o.heartbeatMs, loadTimeoutMs: o.loadTimeoutMs ?? 5000 };
  const pkv = new HostKvCache(64, BS, 2, 2, 4, 4);
  fillPattern(pkv.data, 17);
  const ckv = new HostKvCache(64, BS, 2, 2, 4, 4);
  const P = new TcpConnector('kv_producer', { ...base, key, log: plog });
  const C = new TcpConnector('kv_consumer', { ...base, key: o.consumerKey ?? key, log: clog, peerAllowlist: o.allow === undefined ? null : o.allow });
  P.registerKvCache(pkv);
  C.registerKvCache(ckv);
  return { P, C, pkv, ckv, plog, clog };
}

/** Prefill leg on P: finished with do_remote_decode -> params. */
async function prefill(P: TcpConnector, id: string, n: number, blocks: number[]) {
  await P.ready();
  const r = P.requestFinished(req(id, prompt(n), blocks, { do_remote_decode: true }), blocks);
  assert.equal(r.delayFree, true);
  return r.kvTransferParams!;
}

/** Decode leg on C up to the end of the load; returns the local block ids. */
async function decode(C: TcpConnector, id: string, n: number, params: Record<string, unknown>, local: number[]) {
  const q = req(id, prompt(n), local, params);
  const m = C.getNumNewMatchedTokens(q, 0);
  if (!m.count) return { m, done: true };
  C.updateStateAfterAlloc(q, local, m.count);
  C.startLoadKv();
  await until(() => {
    const f = C.getFinished();
    return f.doneRecving.has(id);
  });
  return { m, done: true };
}

function sameBlocks(a: HostKvCache, ai: number[], b: HostKvCache, bi: number[], upto: number) {
  const g1 = new Uint8Array(upto * a.bytesPerToken);
  const g2 = new Uint8Array(upto * b.bytesPerToken);
  return Promise.all([a.gather(Int32Array.from(ai), upto, g1), b.gather(Int32Array.from(bi), upto, g2)]).then(() => Buffer.from(g1).equals(Buffer.from(g2)));
}

describe('TcpConnector', () => {
  it('prefill params in vLLM NixlConnector shape; the decoder pulls byte-exact, logs (P2P tcp), notifies done; the prefiller frees', async () => {
    const { P, C, pkv, ckv, plog, clog } = pair();
    try {
      const params = await prefill(P, 'r1', 70, [10, 11, 12, 13, 14]);
      for (const k of ['do_remote_prefill', 'do_remote_decode', 'remote_engine_id', 'remote_request_id', 'remote_block_ids', 'remote_host', 'remote_port', 'tp_size']) assert.ok(k in params, k);
      assert.equal(params.do_remote_prefill, true);
      assert.equal(params.remote_engine_id, P.tcp!.instanceId);
      assert.equal(P.heldCount, 1);
      const { m } = await decode(C, 'r1', 70, params, [0, 1, 2, 3, 4]);
      assert.deepEqual(m, { count: 69 }); // prompt length - 1
      assert.equal(C.getBlockIdsWithLoadErrors().size, 0);
      assert.ok(await sameBlocks(pkv, [10, 11, 12, 13, 14], ckv, [0, 1, 2, 3, 4], 80));
      assert.ok(clog.lines.some((l) => /^Retrieved 69 out of 69 required tokens \(from 70 total tokens\)\. size: .* gb, cost .* ms, throughput: .* GB\/s; \(P2P tcp\)$/.test(l)), clog.lines.join('\n'));
      await until(() => P.getFinished().doneSending.has('r1'));
      assert.equal(P.heldCount, 0);
      assert.equal(P.counters.releasedByPeer, 1);
      assert.ok(!plog.lines.some((l) => /expired/.test(l)));
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('a decoder that never pulls: the prefiller frees at lease expiry with a warning', async () => {
    const { P, C, plog } = pair({ leaseMs: 300 });
    try {
      await prefill(P, 'r2', 40, [1, 2, 3]);
      await until(() => P.getFinished().doneSending.has('r2'));
      assert.equal(P.counters.expiredLeases, 1);
      assert.ok(plog.lines.some((l) => /Reqid: r2: KV lease expired/.test(l)));
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('heartbeats from the moment the decoder queues keep the lease alive past its ttl', async () => {
    const { P, C, pkv, ckv } = pair({ leaseMs: 500, heartbeatMs: 100 });
    try {
      const params = await prefill(P, 'r3', 33, [5, 6, 7]);
      const q = req('r3', prompt(33), [0, 1, 2], params);
      const m = C.getNumNewMatchedTokens(q, 0);
      assert.equal(m.count, 32);
      await sleep(1200); // queued well past the 500 ms lease
      assert.equal(P.heldCount, 1, 'heartbeats renewed the lease');
      assert.ok(C.counters.heartbeats >= 5);
      C.updateStateAfterAlloc(q, [0, 1, 2], 32);
      C.startLoadKv();
      await until(() => C.getFinished().doneRecving.has('r3'));
      assert.equal(C.getBlockIdsWithLoadErrors().size, 0);
      assert.ok(await sameBlocks(pkv, [5, 6], ckv, [0, 1], 32));
      await until(() => P.heldCount === 0);
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('a dead prefiller: the load fails within its timeout, the blocks are marked for recompute', async () => {
    const { P, C, clog } = pair({ loadTimeoutMs: 2000 });
    try {
      const params = await prefill(P, 'r4', 40, [1, 2, 3]);
      await P.shutdown();
      const t0 = Date.now();
      await decode(C, 'r4', 40, params, [7, 8, 9]);
      assert.ok(Date.now() - t0 < 8000);
      assert.deepEqual([...C.getBlockIdsWithLoadErrors()].sort(), [7, 8, 9]);
      assert.ok(clog.lines.some((l) => /KV pull over tcp .* failed .* recomputes/.test(l)));
    } finally {
      await C.shutdown();
    }
  });

  it('a decoder without the internal secret cannot read: recompute; the prefiller keeps (then expires) its lease', async () => {
    const { P, C } = pair({ consumerKey: randomBytes(32), leaseMs: 800 });
    try {
      const params = await prefill(P, 'r5', 40, [1, 2, 3]);
      await decode(C, 'r5', 40, params, [7, 8, 9]);
      assert.deepEqual([...C.getBlockIdsWithLoadErrors()].sort(), [7, 8, 9]);
      assert.equal(P.counters.abortedByPeer, 0, 'an unauthenticated abort must not release the blocks');
      await until(() => P.counters.expiredLeases === 1);
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('a peer not on the allowlist is never contacted; a full local hit and an abort before the load free the prefiller at once', async () => {
    const { P, C } = pair({ allow: ['10.9.9.9:5600'] });
    try {
      const params = await prefill(P, 'r6', 40, [1, 2, 3]);
      assert.deepEqual(C.getNumNewMatchedTokens(req('r6', prompt(40), [0, 1, 2], params), 0), { count: 0 });
      assert.equal(C.counters.heartbeats, 0);
      assert.equal(P.heldCount, 1);
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
    const b = pair();
    try {
      const p7 = await prefill(b.P, 'r7', 40, [1, 2, 3]);
      assert.deepEqual(b.C.getNumNewMatchedTokens(req('r7', prompt(40), [0, 1, 2], p7), 39), { count: 0 }); // all computed locally
      await until(() => b.P.getFinished().doneSending.has('r7'));
      const p8 = await prefill(b.P, 'r8', 40, [4, 5, 6]);
      const q = req('r8', prompt(40), [0, 1, 2], p8, 'abort');
      assert.equal(b.C.getNumNewMatchedTokens(q, 0).count, 39);
      b.C.requestFinished(q, [0, 1, 2]);
      await until(() => b.P.counters.abortedByPeer === 1);
      assert.equal(b.P.heldCount, 0);
    } finally {
      await Promise.all([b.C.shutdown(), b.P.shutdown()]);
    }
  });

  it('an aborted prefill holds nothing; malformed params are ignored', async () => {
    const { P, C } = pair();
    try {
      await P.ready();
      assert.deepEqual(P.requestFinished(req('a', prompt(40), [1, 2, 3], { do_remote_decode: true }, 'abort'), [1, 2, 3]), { delayFree: false });
      assert.equal(P.heldCount, 0);
      assert.equal(tcpSourceOf('x', { do_remote_prefill: true, remote_engine_id: 'e', remote_host: 'h', remote_port: 0, remote_block_ids: [1] }), null);
      assert.equal(tcpSourceOf('x', { do_remote_prefill: true, remote_engine_id: 'e', remote_host: 'h', remote_port: 5, remote_block_ids: [-1] }), null);
      assert.equal(tcpSourceOf('x', { do_remote_prefill: true, remote_engine_id: 'e', remote_host: 'h', remote_port: 5, remote_block_ids: [1], remote_transport: 'rdma' }), null);
      assert.deepEqual(tcpSourceOf('x', { do_remote_prefill: true, remote_engine_id: 'e', remote_host: 'h', remote_port: 5, remote_block_ids: [1] })?.remoteRequestId, 'x');
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });
});

runConnectorConformance('TcpConnector (tcp pull on loopback)', async () => {
  const { P, C, pkv, ckv } = pair();
  return { producer: P, consumer: C, pkv, ckv, prefillParams: { do_remote_decode: true }, ready: () => P.ready(), cleanup: async () => {} };
});
