import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { ConnectorRequest, KvCacheAccess } from '../../engine/connector/base.js';
import { parseEngineConfig } from '../../engine/config.js';
import { LLMEngine } from '../../engine/llm-engine.js';
import { defaultSamplingParams, type SamplingParams } from '../../engine/protocol.js';
import { FakeModel } from '../../engine/testing/fake-model.js';
import { registerConnectorRoutes } from '../../server/kv-routes.js';
import { toHttpError } from '../../server/http-errors.js';
import type { Logger } from '../../util/logger.js';
import { captureLog } from './testing/helpers.js';
import type { ModelIdentity } from '../chunk-hash.js';
import { parseKvConfig, type KvConfigInput } from '../config.js';
import { HostKvCache } from '../host-kv-cache.js';
import { FakePeerKvCache } from '../testing/fake-peer-kv-cache.js';
import { P2pConnector, signedHttpRelease, remoteSourceOf, type SendRelease } from './p2p-connector.js';
import { keepRawBody, registerEdgeAuth } from '../../server/edge-auth.js';
import { signRequest } from '../../security/request-signing.js';
import { PdConnector } from './pd-connector.js';
import { createConnector } from './registry.js';
import { runConnectorConformance } from './testing/conformance.js';

const ID: ModelIdentity = { name: 'tiny', architecture: 'TestForCausalLM', dtype: 'f32', numLayers: 2, numKvHeads: 2, headDim: 4, kvDtype: 'f32' };
const BS = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prompt = (n: number, salt = 0) => Array.from({ length: n }, (_, i) => (i * 7 + salt) % 5000);
const blocks = (n: number, base: number) => Array.from({ length: Math.ceil(n / BS) }, (_, i) => base + i);
const req = (id: string, p: number[], computed: number, blockIds: number[], kvTransferParams?: Record<string, unknown>): ConnectorRequest => ({
  requestId: id, promptTokenIds: p, numComputedTokens: computed, blockIds, ...(kvTransferParams ? { kvTransferParams } : {}),
});


/** Producers by port: a fake network for the release call. */
function fakeNetwork() {
  const byPort = new Map<number, P2pConnector>();
  const sent: string[] = [];
  const send: SendRelease = async (_host, port, id) => {
    sent.push(id);
    const p = byPort.get(port);
    if (!p) throw new Error(`connection refused on ${port}`);
    if (!p.releaseHeld(id)) throw new Error('release returned HTTP 404');
  };
  return { byPort, sent, send };
}

function make(role: 'kv_producer' | 'kv_consumer', net: ReturnType<typeof fakeNetwork>, o: { port?: number; kv?: KvCacheAccess; over?: KvConfigInput; releaseTimeoutMs?: number; log?: Logger } = {}) {
  const config = parseKvConfig({ local_cpu: false, transfer_channel: 'cuda_ipc', chunk_size: 64, blocking_timeout_secs: 2, ...o.over });
  const log = o.log ?? captureLog(true);
  const inner = new PdConnector(role, config, ID, [], log);
  const conn = new P2pConnector(role, config, inner, { sendRelease: net.send, releaseTimeoutMs: o.releaseTimeoutMs, log });
  const kv = o.kv ?? new FakePeerKvCache(128, BS, 2, 2, 4, 4);
  conn.registerKvCache(kv);
  if (o.port) {
    conn.setEndpoint('0.0.0.0', o.port);
    net.byPort.set(o.port, conn);
  }
  return { conn, kv };
}

/** Producer like the engine: one prefill step, then finished. */
function produce(conn: P2pConnector, kv: FakePeerKvCache, id: string, p: number[], blockIds: number[]) {
  kv.fill(blockIds, 0, p.length);
  const meta = conn.buildConnectorMeta({ scheduled: [{ req: req(id, p, 0, blockIds, { do_remote_decode: true }), numNewTokens: p.length, isPrefillDone: true }] });
  return { meta, fin: conn.requestFinished(req(id, p, p.length, blockIds, { do_remote_decode: true }), blockIds) };
}

async function untilRecv(conn: P2pConnector, id: string): Promise<Set<number>> {
  for (;;) {
    const f = conn.getFinished();
    if (f.doneRecving.has(id)) return conn.getBlockIdsWithLoadErrors();
    await sleep(1);
  }
}

describe('P2pConnector', () => {
  it('producer params -> consumer copies GPU-to-GPU style -> release frees the producer blocks; identical KV', async () => {
    const net = fakeNetwork();
    const log = captureLog(true);
    const P = make('kv_producer', net, { port: 7001, log });
    const C = make('kv_consumer', net, { log });
    const p = prompt(600, 3);
    const pb = blocks(600, 5);
    const { meta, fin } = produce(P.conn, P.kv as FakePeerKvCache, 'r1', p, pb);
    assert.equal(meta.saves.length, 0, 'nothing saved to the tiers on the peer path');
    assert.equal(fin.delayFree, true);
    const params = fin.kvTransferParams!;
    assert.equal(params.do_remote_prefill, true);
    assert.equal(params.do_remote_decode, false);
    assert.equal(params.remote_engine_id, P.conn.engineId);
    assert.deepEqual(params.remote_block_ids, pb);
    assert.equal(params.remote_host, '127.0.0.1');
    assert.equal(params.remote_port, 7001);
    assert.equal(params.tp_size, 1);
    assert.equal(typeof params.remote_ipc_handle, 'string');
    assert.equal(P.conn.heldCount, 1);
    assert.equal(P.conn.getFinished().doneSending.size, 0, 'held until released');

    const cp = JSON.parse(JSON.stringify(params)) as Record<string, unknown>; // through the proxy as JSON
    const cb = blocks(600, 60).reverse();
    const r = C.conn.getNumNewMatchedTokens(req('r1', p, 0, [], cp), 0);
    assert.deepEqual(r, { count: 599 });
    C.conn.updateStateAfterAlloc(req('r1', p, 0, cb, cp), cb, 599);
    const cmeta = C.conn.buildConnectorMeta({ scheduled: [] });
    C.conn.startLoadKv(cmeta);
    const errors = await untilRecv(C.conn, 'r1');
    assert.equal(errors.size, 0);
    assert.equal((C.kv as FakePeerKvCache).copies, 1, 'one batched copy');
    assert.deepEqual(Buffer.from((C.kv as HostKvCache).read(cb, 599)), Buffer.from((P.kv as HostKvCache).read(pb, 599)));
    await sleep(5);
    assert.deepEqual(net.sent, ['r1']);
    assert.deepEqual([...P.conn.getFinished().doneSending], ['r1'], 'released by the decoder');
    assert.equal(P.conn.heldCount, 0);
    assert.equal(P.conn.counters.releasedByPeer, 1);
    const text = log.lines.join('\n');
    assert.match(text, /Reqid: r1, Total tokens 600, Inference Engine computed tokens: 0, LMCache hit tokens: 599, need to load: 599/);
    assert.match(text, /Retrieved 599 out of 599 required tokens \(from 600 total tokens\)\. size: \d+\.\d{4} gb, cost \d+\.\d{4} ms, throughput: \d+\.\d{4} GB\/s; \(GPU→GPU cuda_ipc\)/);
    await P.conn.shutdown();
    await C.conn.shutdown();
  });

  it('frees held blocks after the release timeout, with a warning, when no decoder releases them', async () => {
    const net = fakeNetwork();
    const log = captureLog(true);
    const P = make('kv_producer', net, { port: 7002, releaseTimeoutMs: 30, log });
    const { fin } = produce(P.conn, P.kv as FakePeerKvCache, 'r2', prompt(40), blocks(40, 0));
    assert.equal(fin.delayFree, true);
    assert.equal(P.conn.getFinished().doneSending.size, 0);
    await sleep(60);
    assert.deepEqual([...P.conn.getFinished().doneSending], ['r2']);
    assert.equal(P.conn.counters.releasedByTimeout, 1);
    assert.match(log.lines.join('\n'), /Reqid: r2: no KV release from the decoder within 0\.0 s; freeing its blocks/);
    assert.equal(P.conn.releaseHeld('r2'), false, 'a late release finds nothing');
    await P.conn.shutdown();
  });

  it('a failed copy marks the blocks for recompute and still releases the producer', async () => {
    const net = fakeNetwork();
    const P = make('kv_producer', net, { port: 7003 });
    const C = make('kv_consumer', net);
    (C.kv as FakePeerKvCache).failCopies = 'peer access unavailable';
    const p = prompt(100);
    const { fin } = produce(P.conn, P.kv as FakePeerKvCache, 'r3', p, blocks(100, 0));
    const cb = blocks(100, 20);
    const r = C.conn.getNumNewMatchedTokens(req('r3', p, 0, [], fin.kvTransferParams), 0);
    assert.equal(r.count, 99);
    C.conn.updateStateAfterAlloc(req('r3', p, 0, cb, fin.kvTransferParams), cb, 99);
    C.conn.startLoadKv(C.conn.buildConnectorMeta({ scheduled: [] }));
    const errors = await untilRecv(C.conn, 'r3');
    assert.deepEqual([...errors].sort((a, b) => a - b), cb);
    assert.equal(C.conn.counters.failedPeerLoads, 1);
    await sleep(5);
    assert.deepEqual([...P.conn.getFinished().doneSending], ['r3']);
    await P.conn.shutdown();
    await C.conn.shutdown();
  });

  it('without peer copy (cpu) the consumer takes the pool path and releases the producer at once', async () => {
    const net = fakeNetwork();
    const P = make('kv_producer', net, { port: 7004 });
    const C = make('kv_consumer', net, { kv: new HostKvCache(128, BS, 2, 2, 4, 4) });
    const p = prompt(50);
    const { fin } = produce(P.conn, P.kv as FakePeerKvCache, 'r4', p, blocks(50, 0));
    const r = C.conn.getNumNewMatchedTokens(req('r4', p, 0, [], fin.kvTransferParams), 0);
    assert.deepEqual(r, { count: 0 }, 'the pool path (no tiers here) finds nothing');
    await sleep(5);
    assert.deepEqual([...P.conn.getFinished().doneSending], ['r4']);
    await C.conn.shutdown();
    await P.conn.shutdown();
  });

  it('a producer without a peer handle (cpu) or a request without do_remote_decode takes the pool path', () => {
    const net = fakeNetwork();
    const cpu = make('kv_producer', net, { port: 7005, kv: new HostKvCache(128, BS, 2, 2, 4, 4) });
    const a = cpu.conn.requestFinished(req('a', prompt(40), 40, blocks(40, 0), { do_remote_decode: true }), blocks(40, 0));
    assert.deepEqual(a, { delayFree: false });
    const gpu = make('kv_producer', net, { port: 7006 });
    const b = gpu.conn.requestFinished(req('b', prompt(40), 40, blocks(40, 0)), blocks(40, 0));
    assert.deepEqual(b, { delayFree: false });
    const aborted = { ...req('d', prompt(40), 40, blocks(40, 0), { do_remote_decode: true }), finishReason: 'abort' };
    assert.deepEqual(gpu.conn.requestFinished(aborted, blocks(40, 0)), { delayFree: false }, 'an aborted prefill frees at once');
    const noEndpoint = make('kv_producer', net);
    assert.deepEqual(noEndpoint.conn.requestFinished(req('c', prompt(40), 40, blocks(40, 0), { do_remote_decode: true }), blocks(40, 0)), { delayFree: false });
  });

  it('remoteSourceOf rejects malformed params', () => {
    const ok = { do_remote_prefill: true, remote_engine_id: 'e', remote_host: 'h', remote_port: 80, remote_ipc_handle: 'AAAA', remote_block_ids: [1, 2] };
    assert.ok(remoteSourceOf(ok));
    assert.equal(remoteSourceOf(undefined), null);
    assert.equal(remoteSourceOf({ ...ok, do_remote_prefill: false }), null);
    assert.equal(remoteSourceOf({ ...ok, remote_port: 70000 }), null);
    assert.equal(remoteSourceOf({ ...ok, remote_block_ids: [1, -2] }), null);
    assert.equal(remoteSourceOf({ ...ok, remote_ipc_handle: '' }), null);
  });

  it('the registry builds it for transfer_channel cuda_ipc, PdConnector otherwise', () => {
    const c = createConnector({ kv_connector: 'PdConnector', kv_role: 'kv_consumer', engine_id: 'eng-1' }, parseKvConfig({ local_cpu: false, transfer_channel: 'cuda_ipc' }), ID);
    assert.ok(c instanceof P2pConnector);
    assert.equal((c as P2pConnector).engineId, 'eng-1');
    assert.ok(createConnector({ kv_connector: 'PdConnector', kv_role: 'kv_consumer' }, parseKvConfig({ local_cpu: false }), ID) instanceof PdConnector);
    assert.throws(() => parseKvConfig({ transfer_channel: 'nixl' }), /transfer_channel/);
  });

  it('POST /v1/kv/release over HTTP, signed: 200 once, then 404; 400 on a bad body; unsigned or wrong key refused', async () => {
    const KEY = Buffer.alloc(32, 0x11);
    const httpRelease = signedHttpRelease(KEY);
    const net = fakeNetwork();
    const P = make('kv_producer', net, { port: 7007 });
    produce(P.conn, P.kv as FakePeerKvCache, 'r8', prompt(20), blocks(20, 0));
    const app = Fastify();
    app.setErrorHandler((err, _req, reply) => {
      const h = toHttpError(err);
      void reply.code(h.status).send(h.body);
    });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (req, b, done) => {
      keepRawBody(req, String(b));
      try { done(null, JSON.parse(String(b))); } catch (e) { done(e as Error, undefined); }
    });
    registerEdgeAuth(app, { apiKeys: [], internalKey: KEY });
    const routes = P.conn.attachServer({ internalKey: KEY, peerAllowlist: [] });
    assert.deepEqual(routes.map((r) => r.path), ['/v1/kv/release'], 'the connector serves its release route through the seam');
    registerConnectorRoutes(app, routes);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    try {
      await assert.rejects(signedHttpRelease(Buffer.alloc(32, 0x12))('127.0.0.1', port, 'r8'), /HTTP 401/);
      await assert.rejects(signedHttpRelease(null)('127.0.0.1', port, 'r8'), /no internal secret/);
      const unsigned = await fetch(`http://127.0.0.1:${port}/v1/kv/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"request_id":"r8"}' });
      assert.equal(unsigned.status, 401);
      await httpRelease('127.0.0.1', port, 'r8');
      assert.deepEqual([...P.conn.getFinished().doneSending], ['r8']);
      await assert.rejects(httpRelease('127.0.0.1', port, 'r8'), /HTTP 404/);
      const badBody = '{"request":1}';
      const bad = await fetch(`http://127.0.0.1:${port}/v1/kv/release`, { method: 'POST', headers: { 'content-type': 'application/json', ...signRequest(KEY, 'POST', '/v1/kv/release', badBody) }, body: badBody });
      assert.equal(bad.status, 400);
      assert.match(JSON.stringify(await bad.json()), /request/);
    } finally {
      await app.close();
      await P.conn.shutdown();
    }
  });
});

describe('P2pConnector in two engines', () => {
  /** KvCacheAccess over a FakeModel: peer copies move its (token, position) slots. */
  const models = new Map<string, FakeModel>();
  function access(model: FakeModel, name: string, fail = false): KvCacheAccess {
    models.set(name, model);
    return {
      blockSize: model.blockSize,
      bytesPerToken: 128, // ID: 2 layers x (K, V) x 2 heads x 4 dims x f32
      gather: async () => assert.fail('no gather on the peer path'),
      scatter: async () => assert.fail('no scatter on the peer path'),
      exportPeerHandle: () => Buffer.from(name),
      copyFromPeer: async (h, src, dst) => {
        if (fail) throw new Error('cudaIpcOpenMemHandle failed');
        model.copyBlocksFrom(models.get(Buffer.from(h).toString())!, src, dst);
      },
    };
  }
  const greedy = (maxTokens: number): SamplingParams => ({ ...defaultSamplingParams, temperature: 0, maxTokens, ignoreEos: true });
  function engine(name: string, role: 'kv_producer' | 'kv_consumer' | null, net: ReturnType<typeof fakeNetwork>, fail = false) {
    const config = parseEngineConfig({ blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 8 });
    const model = new FakeModel(50, 4);
    let connector: P2pConnector | null = null;
    if (role) {
      const kvc = parseKvConfig({ local_cpu: false, transfer_channel: 'cuda_ipc', chunk_size: 4 });
      connector = new P2pConnector(role, kvc, new PdConnector(role, kvc, ID, [], captureLog(true)), { sendRelease: net.send, log: captureLog(true) });
      connector.registerKvCache(access(model, name, fail));
      if (role === 'kv_producer') {
        connector.setEndpoint('127.0.0.1', 9100);
        net.byPort.set(9100, connector);
      }
    }
    const e = new LLMEngine({ config, model, numBlocks: 128, vocabSize: 50, maxModelLen: 512, eosTokenIds: [2], connector });
    return { e, model, connector };
  }
  async function run(e: LLMEngine, id: string, stopWhenFinished = false) {
    const toks: number[] = [];
    let params: Record<string, unknown> | undefined;
    for (let i = 0; i < 10000 && e.hasWork(); i++) {
      for (const o of await e.step()) {
        if (o.seq.requestId !== id) continue;
        toks.push(...o.seq.pendingTokenIds.splice(0));
        if (o.finished) params = o.kvTransferParams;
      }
      e.checkIntegrity();
      if (stopWhenFinished && params) break;
      await sleep(0);
    }
    return { toks, params };
  }
  const p = Array.from({ length: 45 }, (_, i) => (i * 11 + 3) % 50);

  it('an aborted prefill frees its blocks at once (nothing held, no params)', async () => {
    const net = fakeNetwork();
    const P = engine('Pabort', 'kv_producer', net);
    const long = Array.from({ length: 100 }, (_, i) => (i * 3) % 50);
    P.e.addRequest({ requestId: 'a', promptTokenIds: long, sampling: greedy(1), kvTransferParams: { do_remote_decode: true } });
    assert.deepEqual(await P.e.step(), [], 'first chunk of the prefill');
    assert.ok(P.e.blockManager.numFreeBlocks < P.e.blockManager.numBlocks);
    P.e.finishRequest('a', 'abort');
    const outs = P.e.takeOutputs();
    assert.equal(outs.length, 1);
    assert.equal(outs[0]!.kvTransferParams, undefined);
    assert.equal(P.e.hasWork(), false);
    assert.equal(P.e.blockManager.numFreeBlocks, P.e.blockManager.numBlocks);
    assert.equal(P.connector!.heldCount, 0);
  });

  for (const fail of [false, true])
    it(`1P1D decode equals colocated${fail ? ' when the copy fails (recomputed)' : ''}; producer blocks held until release`, async () => {
      const net = fakeNetwork();
      const colo = engine('colo', null, net);
      colo.e.addRequest({ requestId: 'x', promptTokenIds: p, sampling: greedy(10) });
      const want = (await run(colo.e, 'x')).toks;

      const P = engine(`P${fail}`, 'kv_producer', net);
      P.e.addRequest({ requestId: 'x', promptTokenIds: p, sampling: greedy(1), kvTransferParams: { do_remote_decode: true, do_remote_prefill: false } });
      const pre = await run(P.e, 'x', true);
      assert.ok(pre.params, 'the final output carries kv_transfer_params at once');
      assert.equal(pre.toks.length, 1);
      assert.ok(P.e.blockManager.numFreeBlocks < P.e.blockManager.numBlocks, 'blocks held for the decoder');
      assert.throws(() => P.e.addRequest({ requestId: 'x', promptTokenIds: p, sampling: greedy(1) }), /already in use/);

      const D = engine(`D${fail}`, 'kv_consumer', net, fail);
      const seq = D.e.addRequest({ requestId: 'x', promptTokenIds: p, sampling: greedy(10), kvTransferParams: JSON.parse(JSON.stringify(pre.params)) });
      const forwardsBefore = D.model.forwards;
      const got = await run(D.e, 'x');
      assert.deepEqual(got.toks, want);
      assert.equal(seq.numCachedTokens, fail ? 0 : 44);
      if (!fail) assert.equal(D.model.forwards - forwardsBefore, 10, 'only the last prompt token + decode steps were computed');
      assert.equal(D.e.blockManager.numFreeBlocks, D.e.blockManager.numBlocks);
      await sleep(5);
      await P.e.step();
      P.e.checkIntegrity();
      assert.equal(P.e.blockManager.numFreeBlocks, P.e.blockManager.numBlocks, 'released by the decoder');
      assert.equal(P.e.hasWork(), false);
      await P.connector!.shutdown();
      await D.connector!.shutdown();
    });
});

runConnectorConformance('P2pConnector (peer copy between fake peer caches)', async () => {
  const net = fakeNetwork();
  const P = make('kv_producer', net, { port: 7101 });
  const C = make('kv_consumer', net);
  return { producer: P.conn, consumer: C.conn, pkv: P.kv as HostKvCache, ckv: C.kv as HostKvCache, prefillParams: { do_remote_decode: true }, cleanup: async () => {} };
});
