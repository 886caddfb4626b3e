// The one behaviour suite every KvConnector runs (called from each connector's test file, like the tiers'
// src/kv/tiers/testing/conformance.ts). The suite drives a producer and a consumer exactly in the engine's
// call order (src/engine/llm-engine.ts; the contract is engine/connector/base.ts) and checks what every
// connector promises the engine, whatever moves the bytes (kv-server pool, GPU peer copy, tcp pull):
//   - idle: an empty step plans nothing, reports nothing, and waitForSave resolves;
//   - a prompt nobody produced: the match settles (null means "ask again") at 0 and plans no load;
//   - producer -> (kv_transfer_params as JSON, as the proxy carries them) -> consumer: the match is at
//     most prompt length - 1, the load reports doneRecving with no failed block, the consumer's blocks
//     hold the producer's bytes, and a producer that answered delayFree reports doneSending;
//   - shutdown resolves on both sides.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ConnectorRequest, KvConnector } from '../../../engine/connector/base.js';
import type { KvTransferParams } from '../../../engine/connector/types.js';
import type { HostKvCache } from '../../host-kv-cache.js';

export const CONFORMANCE_BLOCK_SIZE = 16;

export interface ConnectorPair {
  /** registered on pkv / ckv (HostKvCache geometry: blockSize CONFORMANCE_BLOCK_SIZE, >= 64 blocks) */
  producer: KvConnector;
  consumer: KvConnector;
  pkv: HostKvCache;
  ckv: HostKvCache;
  /** kv_transfer_params of the prefill request (the proxy's { do_remote_decode: true }); none: the pool path */
  prefillParams?: KvTransferParams;
  /** resolves once the producer can hand out params (a listening transport) */
  ready?(): Promise<void>;
  /** shuts down what the fixture started besides the two connectors (servers, files) */
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prompt = (n: number, salt: number) => Array.from({ length: n }, (_, i) => (i * 13 + salt) % 4999); // unlike the connectors' own tests' prompts
const blocks = (n: number, base: number) => Array.from({ length: Math.ceil(n / CONFORMANCE_BLOCK_SIZE) }, (_, i) => base + i);
const req = (id: string, p: number[], computed: number, blockIds: number[], kvTransferParams?: KvTransferParams): ConnectorRequest => ({
  requestId: id, promptTokenIds: p, numComputedTokens: computed, blockIds, ...(kvTransferParams ? { kvTransferParams } : {}),
});

async function until<T>(what: string, f: () => T | null | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(2);
  }
}

/** The consumer's match for q, polled as the scheduler does until it is no longer null. */
const settledMatch = (c: KvConnector, q: ConnectorRequest) => until('match', () => {
  const m = c.getNumNewMatchedTokens(q, q.numComputedTokens);
  return m.count === null ? null : { count: m.count };
});

export function runConnectorConformance(name: string, make: () => Promise<ConnectorPair>): void {
  describe(`KvConnector conformance: ${name}`, () => {
    async function withPair(body: (p: ConnectorPair) => Promise<void>): Promise<void> {
      const f = await make();
      try {
        await f.ready?.();
        await body(f);
      } finally {
        await f.producer.shutdown();
        await f.consumer.shutdown();
        await f.cleanup();
      }
    }

    it('roles as configured; an idle step plans nothing, reports nothing, and waitForSave resolves', () =>
      withPair(async ({ producer, consumer }) => {
        assert.equal(producer.role, 'kv_producer');
        assert.equal(consumer.role, 'kv_consumer');
        for (const c of [producer, consumer]) {
          const meta = c.buildConnectorMeta({ scheduled: [] });
          assert.deepEqual(meta, { loads: [], saves: [] });
          c.startLoadKv(meta);
          await c.waitForSave();
          const f = c.getFinished();
          assert.equal(f.doneSending.size + f.doneRecving.size, 0);
          assert.equal(c.getBlockIdsWithLoadErrors().size, 0);
        }
      }));

    it('a prompt nobody produced: the match settles at 0 and no load is planned', () =>
      withPair(async ({ consumer }) => {
        const q = req('never-produced', prompt(100, 4321), 0, []);
        assert.deepEqual(await settledMatch(consumer, q), { count: 0 });
        assert.deepEqual(consumer.buildConnectorMeta({ scheduled: [] }).loads, []);
        assert.equal(consumer.requestFinished(q, []).delayFree, false, 'nothing to hold for a request that loaded nothing');
      }));

    it('producer -> params as JSON -> consumer: the producer\'s bytes in the consumer\'s blocks, both sides report done', () =>
      withPair(async ({ producer, consumer, pkv, ckv, prefillParams }) => {
        const n = 200;
        const p = prompt(n, 1234);
        const pb = blocks(n, 3);
        pkv.fill(pb, 0, n, 7);
        // the prefill leg, as the engine runs it: one step planned, its forward, its saves, finished
        const meta = producer.buildConnectorMeta({ scheduled: [{ req: req('r1', p, 0, pb, prefillParams), numNewTokens: n, isPrefillDone: true }] });
        assert.deepEqual(meta.loads, [], 'a producer loads nothing');
        producer.startLoadKv(meta);
        await producer.waitForSave();
        const fin = producer.requestFinished(req('r1', p, n, pb, prefillParams), pb);
        const params = fin.kvTransferParams === undefined ? undefined : (JSON.parse(JSON.stringify(fin.kvTransferParams)) as KvTransferParams);
        // the decode leg: match, allocate, load, wait
        const cb = blocks(n, 30).reverse(); // other block ids, other order
        const m = await settledMatch(consumer, req('r1', p, 0, [], params));
        assert.ok(m.count > 0 && m.count <= n - 1, `match ${m.count}: loaded up to prompt length - 1 (the last token is computed)`);
        consumer.updateStateAfterAlloc(req('r1', p, 0, cb, params), cb, m.count);
        consumer.startLoadKv(consumer.buildConnectorMeta({ scheduled: [] }));
        await until('doneRecving', () => consumer.getFinished().doneRecving.has('r1'));
        assert.deepEqual([...consumer.getBlockIdsWithLoadErrors()], []);
        assert.deepEqual(Buffer.from(ckv.read(cb, m.count)), Buffer.from(pkv.read(pb, m.count)));
        // a producer that held the blocks lets the engine free them once the consumer is done
        if (fin.delayFree) await until('doneSending', () => producer.getFinished().doneSending.has('r1'));
      }));
  });
}
