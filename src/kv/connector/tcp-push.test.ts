// TcpConnector in push mode driven through the engine's connector calls: two real tcp transports on
// loopback over HostKvCache memory; the decoder's target reaches the producer directly (the HTTP route
// is covered end to end in test/e2e). Chunks written as prefill completes them, byte-exact, (P2P tcp)
// line; target before or after the request; timeouts (recompute, or kv_load_failed under fail); client
// abort on either side; a prefiller that dies mid-push; a revoked slot admits no write.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ConnectorRequest } from '../../engine/connector/base.js';
import { captureLog, until } from './testing/helpers.js';
import { HostKvCache } from '../host-kv-cache.js';
import { fillPattern } from '../transport/pattern.js';
import { TcpConnector, pushSourceOf, type TcpConnectorOptions } from './tcp-connector.js';
import { pushTargetSchema } from './push-target-route.js';

const BS = 16;
const IDENT = { model: 'tiny', kvDtype: 'f32', numLayers: 2, numKvHeads: 2, headDim: 4 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prompt = (n: number) => Array.from({ length: n }, (_, i) => (i * 7) % 5000);
const mreq = (id: string, n: number, blockIds: number[], computed: number, kvTransferParams: Record<string, unknown>, finishReason?: string): ConnectorRequest => ({
  requestId: id,
  promptTokenIds: prompt(n),
  numComputedTokens: computed,
  blockIds,
  kvTransferParams,
  ...(finishReason ? { finishReason } : {}),
});

function pair(o: { leaseMs?: number; heartbeatMs?: number; loadTimeoutMs?: number; failurePolicy?: 'fail' | 'recompute' } = {}) {
  const key = randomBytes(32);
  const plog = captureLog();
  const clog = captureLog();
  const base: Omit<TcpConnectorOptions, 'key' | 'log'> = { identity: IDENT, leaseMs: o.leaseMs, heartbeatMs: o.heartbeatMs ?? 200, loadTimeoutMs: o.loadTimeoutMs ?? 5000, failurePolicy: o.failurePolicy };
  const pkv = new HostKvCache(64, BS, 2, 2, 4, 4);
  fillPattern(pkv.data, 29);
  const ckv = new HostKvCache(64, BS, 2, 2, 4, 4);
  const P = new TcpConnector('kv_producer', { ...base, key, log: plog });
  const targets: unknown[] = [];
  const C = new TcpConnector('kv_consumer', {
    ...base,
    key,
    log: clog,
    sendPushTarget: async (_api, body) => {
      targets.push(body);
      return P.acceptPushTarget(pushTargetSchema.parse(JSON.parse(JSON.stringify(body))));
    },
  });
  P.registerKvCache(pkv);
  C.registerKvCache(ckv);
  return { P, C, pkv, ckv, plog, clog, targets };
}

const pParams = (pushId: string) => ({ do_remote_decode: true, do_remote_prefill: false, kv_mode: 'push' as const, push_id: pushId });
const dParams = (pushId: string) => ({ do_remote_prefill: true, do_remote_decode: false, kv_mode: 'push' as const, push_id: pushId, remote_host: '127.0.0.1', remote_port: 8100, remote_transport: 'tcp' });

/** One prefill step on P: tokens [computed, computed+n) are now in the blocks. */
function pstep(P: TcpConnector, id: string, total: number, blocks: number[], computed: number, n: number, pushId: string) {
  P.buildConnectorMeta({ scheduled: [{ req: mreq(id, total, blocks, computed, pParams(pushId)), numNewTokens: n, isPrefillDone: computed + n >= total }] });
  void P.waitForSave();
}

/** The decode leg on C up to the start of its load. */
function dstart(C: TcpConnector, id: string, total: number, local: number[], pushId: string) {
  const q = mreq(id, total, local, 0, dParams(pushId));
  const m = C.getNumNewMatchedTokens(q, 0);
  if (m.count) {
    C.updateStateAfterAlloc(q, local, m.count);
    C.startLoadKv();
  }
  return { q, m };
}

function sameBlocks(a: HostKvCache, ai: number[], b: HostKvCache, bi: number[], upto: number) {
  const g1 = new Uint8Array(upto * a.bytesPerToken);
  const g2 = new Uint8Array(upto * b.bytesPerToken);
  return Promise.all([a.gather(Int32Array.from(ai), upto, g1), b.gather(Int32Array.from(bi), upto, g2)]).then(() => Buffer.from(g1).equals(Buffer.from(g2)));
}

describe('TcpConnector push', () => {
  it('chunks are written as prefill completes them; the decoder starts when the last lands, byte-exact, (P2P tcp); both sides free', async () => {
    const { P, C, pkv, ckv, plog, clog, targets } = pair();
    try {
      await Promise.all([P.ready(), C.ready()]);
      const pblocks = [10, 11, 12, 13, 14];
      const local = [0, 1, 2, 3, 4];
      const { m } = dstart(C, 'd1', 70, local, 'x1');
      assert.deepEqual(m, { count: 69 });
      await until(() => targets.length === 1);
      pstep(P, 'p1', 70, pblocks, 0, 32, 'x1'); // chunk 1: blocks 0, 1 complete
      await until(() => (P.stats().pushedBlocks ?? 0) === 2);
      assert.equal(C.getFinished().doneRecving.size, 0, 'the decoder waits for the last chunk');
      pstep(P, 'p1', 70, pblocks, 32, 38, 'x1'); // chunk 2: the rest
      const fin = P.requestFinished(mreq('p1', 70, pblocks, 70, pParams('x1')), pblocks);
      assert.equal(fin.delayFree, true);
      assert.equal(fin.kvTransferParams?.push_id, 'x1');
      await until(() => C.getFinished().doneRecving.has('d1'));
      assert.equal(C.getBlockIdsWithLoadErrors().size, 0);
      assert.ok(await sameBlocks(pkv, pblocks, ckv, local, 70));
      assert.ok(clog.lines.some((l) => /^Retrieved 69 out of 69 required tokens \(from 70 total tokens\)\. size: .* gb, cost .* ms, throughput: .* GB\/s; \(P2P tcp\)$/.test(l)), clog.lines.join('\n'));
      await until(() => P.getFinished().doneSending.has('p1'));
      assert.equal(P.stats().pushesOut, 0);
      assert.equal(C.stats().pushesIn, 0);
      assert.ok(!plog.lines.some((l) => /dropped|expired/.test(l)), plog.lines.join('\n'));
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('the prefill finishes before the target arrives: the blocks wait under the lease, then go at once', async () => {
    const { P, C, pkv, ckv } = pair();
    try {
      await Promise.all([P.ready(), C.ready()]);
      const pblocks = [20, 21, 22];
      pstep(P, 'p2', 40, pblocks, 0, 40, 'x2');
      assert.equal(P.requestFinished(mreq('p2', 40, pblocks, 40, pParams('x2')), pblocks).delayFree, true);
      dstart(C, 'd2', 40, [5, 6, 7], 'x2');
      await until(() => C.getFinished().doneRecving.has('d2'));
      assert.equal(C.getBlockIdsWithLoadErrors().size, 0);
      assert.ok(await sameBlocks(pkv, pblocks, ckv, [5, 6, 7], 39));
      await until(() => P.getFinished().doneSending.has('p2'));
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('a prefiller that never writes: the decoder gives up within its timeout (recompute; kv_load_failed under fail); the prefiller frees at lease expiry', async () => {
    for (const policy of ['recompute', 'fail'] as const) {
      const { P, C, plog } = pair({ loadTimeoutMs: 600, leaseMs: 400, failurePolicy: policy });
      try {
        await Promise.all([P.ready(), C.ready()]);
        const t0 = Date.now();
        dstart(C, 'd3', 40, [1, 2, 3], 'x3');
        let done = false;
        let errs = new Set<number>();
        let failed = new Map<string, string>();
        await until(() => {
          done = C.getFinished().doneRecving.has('d3');
          if (done) {
            errs = C.getBlockIdsWithLoadErrors();
            failed = C.takeFailedLoads();
          }
          return done;
        });
        assert.ok(Date.now() - t0 < 3000);
        if (policy === 'recompute') {
          assert.deepEqual([...errs].sort(), [1, 2, 3]);
          assert.equal(failed.size, 0);
        } else {
          assert.equal(errs.size, 0);
          assert.match(failed.get('d3') ?? '', /KV push over tcp .* failed/);
        }
        assert.equal(C.stats().pushesIn, 0);
        // the prefill request shows up late and finishes: nobody renews its push, it expires
        pstep(P, 'p3', 40, [7, 8, 9], 0, 40, 'x3x');
        assert.equal(P.requestFinished(mreq('p3', 40, [7, 8, 9], 40, pParams('x3x')), [7, 8, 9]).delayFree, true);
        await until(() => P.getFinished().doneSending.has('p3'));
        assert.ok(plog.lines.some((l) => /KV push x3x dropped: its KV lease expired/.test(l)), plog.lines.join('\n'));
      } finally {
        await Promise.all([C.shutdown(), P.shutdown()]);
      }
    }
  });

  it('the decode request is aborted mid-push: the slot closes, the prefiller drops the push and frees', async () => {
    const { P, C, plog } = pair();
    try {
      await Promise.all([P.ready(), C.ready()]);
      const pblocks = [30, 31, 32, 33];
      const { q } = dstart(C, 'd4', 60, [0, 1, 2, 3], 'x4');
      pstep(P, 'p4', 60, pblocks, 0, 16, 'x4');
      await until(() => (P.stats().pushedBlocks ?? 0) === 1);
      assert.equal(C.requestFinished({ ...q, finishReason: 'abort' }, [0, 1, 2, 3]).delayFree, true);
      await until(() => {
        const f = C.getFinished();
        return f.doneRecving.has('d4') || f.doneSending.has('d4');
      });
      await until(() => plog.lines.some((l) => /KV push x4 dropped: the decoder gave up/.test(l)));
      // the rest of the prefill runs; nothing more is written, the blocks are handed back at its end
      pstep(P, 'p4', 60, pblocks, 16, 44, 'x4');
      assert.equal(P.requestFinished(mreq('p4', 60, pblocks, 60, pParams('x4')), pblocks).delayFree, false);
      assert.equal(P.stats().pushesOut, 0);
      assert.equal(P.stats().pushedBlocks, 1);
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('the prefill request is aborted: the decoder hears abort and recomputes at once', async () => {
    const { P, C } = pair();
    try {
      await Promise.all([P.ready(), C.ready()]);
      const pblocks = [40, 41, 42];
      dstart(C, 'd5', 40, [3, 4, 5], 'x5');
      pstep(P, 'p5', 40, pblocks, 0, 16, 'x5');
      await until(() => (P.stats().pushedBlocks ?? 0) === 1);
      const t0 = Date.now();
      assert.equal(P.requestFinished(mreq('p5', 40, pblocks, 16, pParams('x5'), 'abort'), pblocks).delayFree, false);
      await until(() => C.getFinished().doneRecving.has('d5'));
      assert.ok(Date.now() - t0 < 2000);
      assert.deepEqual([...C.getBlockIdsWithLoadErrors()].sort(), [3, 4, 5]);
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });

  it('a prefiller that dies mid-push: a failed heartbeat ends the wait long before the load timeout', async () => {
    const { P, C, clog } = pair({ loadTimeoutMs: 20_000, heartbeatMs: 100 });
    try {
      await Promise.all([P.ready(), C.ready()]);
      dstart(C, 'd6', 40, [3, 4, 5], 'x6');
      pstep(P, 'p6', 40, [1, 2, 3], 0, 16, 'x6');
      await until(() => (P.stats().pushedBlocks ?? 0) === 1);
      const t0 = Date.now();
      await P.shutdown();
      await until(() => C.getFinished().doneRecving.has('d6'));
      assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
      assert.deepEqual([...C.getBlockIdsWithLoadErrors()].sort(), [3, 4, 5]);
      assert.ok(clog.lines.some((l) => /KV push over tcp .* failed/.test(l)));
    } finally {
      await C.shutdown();
    }
  });

  it('writes outside an open slot are refused; push params are parsed strictly', async () => {
    const { P, C, ckv } = pair();
    try {
      await Promise.all([P.ready(), C.ready()]);
      const before = Buffer.from(ckv.data);
      const ep = (C as unknown as { endpoint: { host: string; port: number } }).endpoint;
      await assert.rejects(P.tcp!.write({ host: ep.host, port: ep.port }, Int32Array.from([1]), Int32Array.from([9]), { requestId: 'nope' }), /no KV push into this engine is open/);
      assert.ok(Buffer.from(ckv.data).equals(before));
      assert.equal(pushSourceOf({ do_remote_prefill: true, kv_mode: 'push', remote_host: 'h', remote_port: 5 }), null, 'no push_id');
      assert.equal(pushSourceOf({ do_remote_prefill: true, kv_mode: 'push', push_id: 'a', remote_host: 'h', remote_port: 5, remote_transport: 'rdma' }), null);
      assert.deepEqual(pushSourceOf(dParams('a')), { api: { host: '127.0.0.1', port: 8100 }, pushId: 'a' });
      assert.throws(() => P.acceptPushTarget(pushTargetSchema.parse({ push_id: 'z', first_block: 0, block_ids: [1], num_tokens: 40, host: 'h', port: 1, engine_id: 'e' })), /1 block ids for blocks 0..3/);
    } finally {
      await Promise.all([C.shutdown(), P.shutdown()]);
    }
  });
});
