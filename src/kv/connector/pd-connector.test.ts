import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectorRequest, KvConnector } from '../../engine/connector/base.js';
import { PdsError } from '../../util/errors.js';
import { chunkKeys, modelFingerprint, type ModelIdentity } from '../chunk-hash.js';
import { parseKvConfig, type KvConfigInput } from '../config.js';
import { KvServer } from '../server/kv-server.js';
import { PAGE_SIZE } from '../server/protocol.js';
import { HostKvCache } from '../host-kv-cache.js';
import { PoolTier } from '../tiers/pool-tier.js';
import { PdConnector } from './pd-connector.js';
import { createConnector, tiersFromConfig } from './registry.js';
import { runConnectorConformance } from './testing/conformance.js';
import type { Logger } from '../../util/logger.js';
import { captureLog } from './testing/helpers.js';

const ID: ModelIdentity = { name: 'tiny', architecture: 'TestForCausalLM', dtype: 'f32', numLayers: 2, numKvHeads: 2, headDim: 4, kvDtype: 'f32' };
const BS = 16;
const CHUNK = 64;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prompt = (n: number, salt = 0) => Array.from({ length: n }, (_, i) => (i * 7 + salt) % 5000);
const blocks = (n: number, base: number) => Array.from({ length: Math.ceil(n / BS) }, (_, i) => base + i);

let server: KvServer;
before(async () => {
  server = await KvServer.start({ host: '127.0.0.1', port: 0, poolSize: PAGE_SIZE + 4 * 2 ** 20, quiet: true, poolFile: `/dev/shm/pdserve-test-pool-${randomBytes(6).toString('hex')}` });
});
after(() => server.stop());

function make(role: 'kv_producer' | 'kv_consumer' | 'kv_both', over: KvConfigInput = {}, log?: Logger) {
  const kv = new HostKvCache(128, BS, 2, 2, 4, 4);
  const config = parseKvConfig({
    chunk_size: CHUNK, local_cpu: false, remote_url: `pdkv://127.0.0.1:${server.port}`, blocking_timeout_secs: 2,
    extra_config: { remote_timeout_secs: 0.5, lookup_backoff_time: 0.05 }, ...over,
  });
  const conn = log ? new PdConnector(role, config, ID, tiersFromConfig(config), log) : (createConnector({ kv_connector: 'PdConnector', kv_role: role }, config, ID) as PdConnector);
  conn.registerKvCache(kv);
  return { conn, kv };
}

const req = (id: string, p: number[], computed: number, blockIds: number[]): ConnectorRequest => ({ requestId: id, promptTokenIds: p, numComputedTokens: computed, blockIds });

/** Drives a producer like the engine: chunked prefill steps of `step` tokens, save after each forward. */
async function produce(conn: KvConnector, kv: HostKvCache, id: string, p: number[], blockIds: number[], step = 256) {
  kv.fill(blockIds, 0, p.length);
  let computed = 0;
  while (computed < p.length) {
    const n = Math.min(step, p.length - computed);
    const meta = conn.buildConnectorMeta({ scheduled: [{ req: req(id, p, computed, blockIds), numNewTokens: n, isPrefillDone: computed + n >= p.length }] });
    assert.equal(meta.saves.length, 1);
    conn.startLoadKv(meta);
    await conn.waitForSave();
    computed += n;
  }
  return conn.requestFinished(req(id, p, computed, blockIds), blockIds);
}

/** Drives a consumer like the engine: poll the match, allocate, load, wait for doneRecving. */
async function consume(conn: KvConnector, id: string, p: number[], numLocal: number, blockIds: number[]) {
  const t0 = Date.now();
  let r = conn.getNumNewMatchedTokens(req(id, p, numLocal, []), numLocal);
  while (r.count === null) {
    await sleep(2);
    r = conn.getNumNewMatchedTokens(req(id, p, numLocal, []), numLocal);
  }
  const matchMs = Date.now() - t0;
  let errors = new Set<number>();
  if (r.count > 0) {
    conn.updateStateAfterAlloc(req(id, p, numLocal, blockIds), blockIds, r.count);
    const meta = conn.buildConnectorMeta({ scheduled: [] });
    assert.equal(meta.loads.length, 1);
    conn.startLoadKv(meta);
    for (;;) {
      const f = conn.getFinished();
      if (f.doneRecving.has(id)) break;
      await sleep(2);
    }
    errors = conn.getBlockIdsWithLoadErrors();
  }
  return { count: r.count, matchMs, errors };
}


describe('PdConnector', () => {
  for (const transport of ['shm', 'tcp'] as const)
    it(`producer -> kv-server (${transport}) -> consumer: identical KV bytes, LMCache log lines`, async () => {
      const log = captureLog(true);
      const P = make('kv_producer', { extra_config: { remote_transport: transport, remote_timeout_secs: 0.5 } }, log);
      const C = make('kv_consumer', { extra_config: { remote_transport: transport, remote_timeout_secs: 0.5 } }, log);
      const p = prompt(600, transport === 'shm' ? 1 : 2);
      const pb = blocks(600, 3);
      const fin = await produce(P.conn, P.kv, `p-${transport}`, p, pb);
      assert.equal(fin.delayFree, false, 'saves were done when the request finished');
      assert.equal(P.conn.counters.storedChunks, 10); // 9 full chunks + the 24-token tail
      const cb = blocks(600, 60).reverse(); // other block ids, other order
      const r = await consume(C.conn, `c-${transport}`, p, 0, cb);
      assert.equal(r.count, 599, 'all but the last prompt token');
      assert.equal(r.errors.size, 0);
      assert.deepEqual(Buffer.from(C.kv.read(cb, 599)), Buffer.from(P.kv.read(pb, 599)));
      const all = C.kv.read(cb, 600);
      const rb = C.kv.bytesPerToken / 4; // 2 layers x (K, V) rows
      for (let row = 0; row < 4; row++)
        assert.ok(all.subarray((row * 600 + 599) * rb, (row * 600 + 600) * rb).every((b) => b === 0), 'the last prompt token is left to the engine');
      const text = log.lines.join('\n');
      assert.match(text, /Stored 256 out of total 256 tokens\. size: \d+\.\d{4} gb, cost \d+\.\d{4} ms, throughput: \d+\.\d{4} GB\/s; offload_time: \d+\.\d{4} ms, put_time: \d+\.\d{4} ms/);
      assert.match(text, /Stored 88 out of total 600 tokens/);
      assert.match(text, new RegExp(`Reqid: c-${transport}, Total tokens 600, Inference Engine computed tokens: 0, LMCache hit tokens: 599, need to load: 599`));
      assert.match(text, /Retrieved 599 out of 599 required tokens \(from 600 total tokens\)\. size: \d+\.\d{4} gb, cost \d+\.\d{4} ms, throughput: \d+\.\d{4} GB\/s;/);
      await P.conn.shutdown();
      await C.conn.shutdown();
    });

  it('loads only past the local prefix hit; skips chunks already stored; short prompts transfer', async () => {
    const P = make('kv_producer');
    const C = make('kv_consumer');
    const p = prompt(300, 11);
    const pb = blocks(300, 0);
    await produce(P.conn, P.kv, 'a', p, pb, 128);
    const stored = P.conn.counters.storedChunks;
    await produce(P.conn, P.kv, 'a2', p, pb, 300);
    assert.equal(P.conn.counters.storedChunks, stored, 'second prefill of the same prompt stores nothing');
    assert.equal(P.conn.counters.skippedChunks, 5);
    const cb = blocks(300, 40);
    const r = await consume(C.conn, 'b', p, 32, cb);
    assert.equal(r.count, 299 - 32);
    const got = C.kv.read(cb, 299);
    const want = P.kv.read(pb, 299);
    // tokens [0, 32) were "prefix-cached" locally: the connector must not touch them
    const bpt = C.kv.bytesPerToken;
    const row = (buf: Uint8Array, t: number) => buf.subarray(t * (bpt / 4), (t + 1) * (bpt / 4)); // layer 0, K row of token t
    assert.ok(row(got, 0).every((b) => b === 0));
    assert.deepEqual(Buffer.from(row(got, 100)), Buffer.from(row(want, 100)));
    assert.deepEqual(Buffer.from(got.subarray(0, 299 * (bpt / 4)).subarray(32 * (bpt / 4))), Buffer.from(want.subarray(0, 299 * (bpt / 4)).subarray(32 * (bpt / 4))));
    const short = prompt(10, 99);
    await produce(P.conn, P.kv, 's', short, blocks(10, 100));
    const rs = await consume(C.conn, 's-c', short, 0, blocks(10, 110));
    assert.equal(rs.count, 9, 'a prompt shorter than one chunk still transfers (save_unfull_chunk)');
    await P.conn.shutdown();
    await C.conn.shutdown();
  });

  it('kv_both through the local CPU tier alone; min_retrieve_tokens', async () => {
    const B = make('kv_both', { local_cpu: true, max_local_cpu_size: 0.01, remote_url: null });
    const p = prompt(200, 5);
    await produce(B.conn, B.kv, 'x', p, blocks(200, 0));
    const r = await consume(B.conn, 'y', p, 0, blocks(200, 20));
    assert.equal(r.count, 199);
    assert.deepEqual(Buffer.from(B.kv.read(blocks(200, 20), 199)), Buffer.from(B.kv.read(blocks(200, 0), 199)));
    const M = make('kv_consumer', { min_retrieve_tokens: 1000 });
    const P = make('kv_producer');
    await produce(P.conn, P.kv, 'm', p, blocks(200, 0));
    assert.equal((await consume(M.conn, 'm2', p, 0, blocks(200, 20))).count, 0);
    await B.conn.shutdown();
    await M.conn.shutdown();
    await P.conn.shutdown();
  });

  it('producer -> local disk tier -> consumer (another connector over the same directory)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pdserve-kv-disk-'));
    try {
      const cfg = { local_cpu: false, remote_url: null, local_disk: dir, max_local_disk_size: 0.01 };
      const P = make('kv_producer', cfg);
      const p = prompt(200, 77);
      await produce(P.conn, P.kv, 'k1', p, blocks(200, 0));
      await P.conn.shutdown();
      const C = make('kv_consumer', cfg); // indexes the files P left
      const r = await consume(C.conn, 'k2', p, 0, blocks(200, 20));
      assert.equal(r.count, 199);
      assert.deepEqual(Buffer.from(C.kv.read(blocks(200, 20), 199)), Buffer.from(P.kv.read(blocks(200, 0), 199)));
      await C.conn.shutdown();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a chunk lost before loading is reported as failed blocks (the engine recomputes them)', async () => {
    const P = make('kv_producer');
    const C = make('kv_consumer');
    const p = prompt(320, 23);
    await produce(P.conn, P.kv, 'f', p, blocks(320, 0));
    const keys = chunkKeys(modelFingerprint(ID), p, CHUNK, true);
    const t0 = Date.now();
    let r = C.conn.getNumNewMatchedTokens(req('f2', p, 0, []), 0);
    while (r.count === null) {
      await sleep(2);
      r = C.conn.getNumNewMatchedTokens(req('f2', p, 0, []), 0);
    }
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(r.count, 319);
    // only a chunk's writer may delete it: the admin speaks as the producer's writer id
    const writerId = (P.conn.tiers.find((t) => t instanceof PoolTier) as PoolTier).client.writerId;
    const admin = new PoolTier({ host: '127.0.0.1', port: server.port, transport: 'tcp', timeoutMs: 1000, backoffMs: 50, writerId });
    assert.equal(await admin.delete(keys[2]!.key), true); // chunk [128, 192)
    await admin.close();
    const cb = blocks(320, 30);
    C.conn.updateStateAfterAlloc(req('f2', p, 0, cb), cb, 319);
    C.conn.startLoadKv(C.conn.buildConnectorMeta({ scheduled: [] }));
    while (!C.conn.getFinished().doneRecving.has('f2')) await sleep(2);
    const bad = C.conn.getBlockIdsWithLoadErrors();
    assert.deepEqual([...bad].sort((a, b) => a - b), cb.slice(128 / BS));
    assert.deepEqual(Buffer.from(C.kv.read(cb, 128)), Buffer.from(P.kv.read(blocks(320, 0), 128)), 'chunks before the lost one loaded');
    await P.conn.shutdown();
    await C.conn.shutdown();
  });

  it('a dead kv-server gives 0 hits within the timeout, and saves do not hang', async () => {
    const C = make('kv_both', { remote_url: 'pdkv://127.0.0.1:1' });
    const p = prompt(100);
    const t0 = Date.now();
    const r = await consume(C.conn, 'd', p, 0, blocks(100, 0));
    assert.equal(r.count, 0);
    assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
    const fin = await produce(C.conn, C.kv, 'd2', p, blocks(100, 0));
    assert.equal(fin.delayFree, false);
    assert.equal(C.conn.counters.storedChunks, 0);
    await C.conn.shutdown();
  });

  it('delays freeing a finished request until its saves are done', async () => {
    const P = make('kv_producer');
    const p = prompt(64, 3);
    const pb = blocks(64, 0);
    P.kv.fill(pb, 0, 64);
    const meta = P.conn.buildConnectorMeta({ scheduled: [{ req: req('z', p, 0, pb), numNewTokens: 64, isPrefillDone: true }] });
    P.conn.startLoadKv(meta);
    assert.equal(P.conn.requestFinished(req('z', p, 64, pb), pb).delayFree, true);
    assert.equal(P.conn.getFinished().doneSending.size, 0);
    await P.conn.waitForSave();
    assert.deepEqual([...P.conn.getFinished().doneSending], ['z']);
    await P.conn.shutdown();
  });

  it('a request aborted before admission releases its kv-server pins at once', async () => {
    const P = make('kv_producer');
    const C = make('kv_consumer');
    const p = prompt(256, 41);
    await produce(P.conn, P.kv, 'ab', p, blocks(256, 0));
    // lookup resolved (hits pinned), then the request ends without blocks (what the engine does on abort)
    let r = C.conn.getNumNewMatchedTokens(req('ab2', p, 0, []), 0);
    while (r.count === null) {
      await sleep(2);
      r = C.conn.getNumNewMatchedTokens(req('ab2', p, 0, []), 0);
    }
    assert.ok(r.count > 0);
    assert.ok(server.stats().pins > 0, 'hits are pinned');
    C.conn.requestFinished(req('ab2', p, 0, []), []);
    const t0 = Date.now();
    while (server.stats().pins > 0 && Date.now() - t0 < 2000) await sleep(2);
    assert.equal(server.stats().pins, 0, 'pins released without another engine step');
    // a lookup still in flight when the abort comes releases its pins when it resolves
    C.conn.getNumNewMatchedTokens(req('ab3', p, 0, []), 0);
    C.conn.requestFinished(req('ab3', p, 0, []), []);
    await sleep(200);
    assert.equal(server.stats().pins, 0);
    await P.conn.shutdown();
    await C.conn.shutdown();
  });

  it('validates chunk_size against the block size and the connector name', () => {
    assert.throws(() => make('kv_consumer', { chunk_size: 40 }), (e: unknown) => e instanceof PdsError && e.param === 'chunk_size');
    assert.throws(() => createConnector({ kv_connector: 'Nope', kv_role: 'kv_both' }, parseKvConfig({}), ID), /unknown kv_connector "Nope"/);
    const lm = createConnector({ kv_connector: 'LMCacheConnectorV1', kv_role: 'kv_producer' }, parseKvConfig({ local_cpu: false }), ID);
    assert.equal(lm.role, 'kv_producer');
  });
});

runConnectorConformance('PdConnector (kv-server pool)', async () => {
  const P = make('kv_producer');
  const C = make('kv_consumer');
  return { producer: P.conn, consumer: C.conn, pkv: P.kv, ckv: C.kv, cleanup: async () => {} };
});
