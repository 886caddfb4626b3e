// The router's side of KV events: a real PUB -> SUB round trip into the index, then hostile messages
// (wrong frame counts, garbage payloads, oversize lists, bad types) counted and dropped, never thrown;
// a sequence going back (engine restart) resets, a jump counts the lost batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { encode } from '@msgpack/msgpack';
import { KvEventSubscriber } from './subscriber.js';
import { encodeBatch, encodeSeq, type KvEvent } from './wire.js';

const stored = (h: string): KvEvent => ({ type: 'BlockStored', blockHashes: [h], parentBlockHash: null, tokenIds: [1, 2, 3, 4], blockSize: 4, loraId: null, medium: 'GPU' });

test('SUB receives a PUB\'s batches in order', async () => {
  const pub = new zmq.Publisher({ linger: 0 });
  await pub.bind('tcp://127.0.0.1:0');
  const got: KvEvent[] = [];
  const sub = new KvEventSubscriber({ endpoint: pub.lastEndpoint!, onEvents: (e) => got.push(...e), onReset: () => undefined });
  try {
    const deadline = Date.now() + 10_000;
    let seq = 0n;
    while (!got.length && Date.now() < deadline) { // slow joiner: publish until the subscription is in place
      await pub.send(['', encodeSeq(seq++), encodeBatch({ ts: 1, events: [stored('ab'.repeat(32))], dataParallelRank: 0 })]);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(got[0]?.type, 'BlockStored');
    assert.equal(sub.counters.malformed, 0);
  } finally {
    await sub.close();
    pub.close();
  }
});

test('hostile messages are counted and dropped; restarts reset; gaps are counted', async () => {
  let resets = 0;
  const got: KvEvent[] = [];
  const sub = new KvEventSubscriber({ endpoint: 'tcp://127.0.0.1:1', onEvents: (e) => got.push(...e), onReset: () => resets++ });
  try {
    const ok = (seq: bigint) => [Buffer.from(''), encodeSeq(seq), encodeBatch({ ts: 1, events: [stored('cd'.repeat(32))], dataParallelRank: 0 })];
    const bad: Uint8Array[][] = [
      [Buffer.from('only one frame')],
      [Buffer.from(''), Buffer.from('short'), encode([1, []])],
      [Buffer.from(''), encodeSeq(1n), Buffer.from([0xc1, 0xff, 0x00])], // not msgpack
      [Buffer.from(''), encodeSeq(1n), encode('a string')],
      [Buffer.from(''), encodeSeq(1n), encode([1, [['BlockStored', [new Uint8Array(8)], null, [-1], 4, null, null]]])], // negative token
      [Buffer.from(''), encodeSeq(1n), encode([1, [['BlockStored', ['str-hash'], null, [], 4, null, null]]])],
      [Buffer.from(''), encodeSeq(1n), encode([1, [['Nope']]])],
      [Buffer.from(''), encodeSeq(1n), encode([1, [['BlockRemoved', new Array(70_000).fill(1), null]]])], // over the list bound
      [Buffer.from(''), encodeSeq(1n), encode([1, [['BlockStored', [new Uint8Array(200)], null, [], 4, null, null]]])], // oversize bin
      [Buffer.from(''), encodeSeq(1n), encode({ ts: 'x', events: [] })],
    ];
    for (const m of bad) sub.handle(m);
    assert.equal(sub.counters.malformed, bad.length);
    assert.equal(got.length, 0);
    sub.handle(ok(5n));
    sub.handle(ok(9n));
    assert.equal(sub.counters.lost, 3);
    sub.handle(ok(0n));
    assert.equal(resets, 1, 'a sequence that goes back is a restarted engine');
    assert.equal(got.length, 3);
    // the map encoding of newer vLLM reads the same
    sub.handle([Buffer.from(''), encodeSeq(1n), encode({ ts: 2, events: [{ type: 'BlockRemoved', block_hashes: [42], medium: 'GPU' }], data_parallel_rank: 0 })]);
    assert.deepEqual(got[3], { type: 'BlockRemoved', blockHashes: ['42'], medium: 'GPU' });
  } finally {
    await sub.close();
  }
});
