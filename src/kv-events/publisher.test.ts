// KV events end to end inside one process: a real LLMEngine (fake model) with the publisher on its block
// manager, a ZeroMQ SUB socket reading vLLM's frames, decoded with plain msgpack. Also: the config's
// defaults and refusals, replay, and the bounded send queue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { decode } from '@msgpack/msgpack';
import { LLMEngine } from '../engine/llm-engine.js';
import { parseEngineConfig } from '../engine/config.js';
import { FakeModel } from '../engine/testing/fake-model.js';
import { defaultSamplingParams } from '../engine/protocol.js';
import { blockHash } from '../engine/block-hash.js';
import { KvEventPublisher } from './publisher.js';
import { bindsEndpoint, defaultKvEventsConfig, parseKvEventsConfig } from './config.js';
import { decodeBatch, decodeSeq, encodeSeq } from './wire.js';

const cfg = (over: Record<string, unknown> = {}) => parseKvEventsConfig(JSON.stringify({ enable_kv_cache_events: true, endpoint: 'tcp://127.0.0.1:0', ...over }));

async function subscribe(ep: string, topic = ''): Promise<zmq.Subscriber> {
  const sub = new zmq.Subscriber({ receiveTimeout: 10_000, linger: 0 });
  sub.connect(ep);
  sub.subscribe(topic);
  await new Promise((r) => setTimeout(r, 300)); // PUB/SUB slow joiner: the subscription must reach the publisher
  return sub;
}

test('config: vLLM field names, loopback default, unknown fields and bad endpoints refused', () => {
  const c = parseKvEventsConfig('{"enable_kv_cache_events":true,"publisher":"zmq","topic":"kv","buffer_steps":5,"hwm":10}');
  assert.equal(c.endpoint, 'tcp://127.0.0.1:5557');
  assert.equal(c.topic, 'kv');
  assert.equal(c.bufferSteps, 5);
  assert.equal(defaultKvEventsConfig.enableKvCacheEvents, false);
  assert.throws(() => parseKvEventsConfig('{"enable_kv_cache_event":true}'), /unknown field/);
  assert.throws(() => parseKvEventsConfig('{"endpoint":"http://x"}'), /endpoint/);
  assert.throws(() => parseKvEventsConfig('{"hwm":0}'), /hwm/);
  assert.throws(() => parseKvEventsConfig('[1]'), /object/);
  assert.ok(bindsEndpoint('tcp://*:5557') && bindsEndpoint('tcp://127.0.0.1:5557') && bindsEndpoint('ipc:///tmp/x'));
  assert.ok(!bindsEndpoint('tcp://10.0.0.5:5557'), 'a remote collector is connected to, as vLLM does');
});

test('engine -> SUB: BlockStored with the engine\'s chained hashes, then BlockRemoved on eviction', async () => {
  const config = parseEngineConfig({ blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 4 });
  const engine = new LLMEngine({ config, model: new FakeModel(50, 4), numBlocks: 8, vocabSize: 50, maxModelLen: 32, eosTokenIds: [2], connector: null });
  const pub = await KvEventPublisher.start(cfg({ topic: 'kv@eng0' }));
  engine.blockManager.events = pub;
  const sub = await subscribe(pub.endpoint, 'kv@eng0');
  try {
    const prompt = Array.from({ length: 13 }, (_, i) => (i * 3 + 1) % 50); // 3 full blocks + 1 token
    const sampling = { ...defaultSamplingParams, temperature: 0, maxTokens: 1, ignoreEos: true };
    engine.addRequest({ requestId: 'a', promptTokenIds: prompt, sampling });
    while (engine.hasWork()) await engine.step();
    const want: string[] = [];
    for (let i = 0, parent: string | null = null; i < 3; i++) want.push((parent = blockHash(parent, prompt, i * 4, i * 4 + 4)));

    const [topic, seq, payload] = await sub.receive();
    assert.equal(topic!.toString(), 'kv@eng0');
    assert.equal(decodeSeq(seq!), 0n);
    const raw = decode(payload!) as unknown[]; // plain msgpack, as a Python subscriber would read it
    assert.equal(typeof raw[0], 'number');
    assert.equal(raw[2], 0, 'data_parallel_rank');
    const ev = (raw[1] as unknown[][])[0]!;
    assert.equal(ev[0], 'BlockStored');
    assert.deepEqual((ev[1] as Uint8Array[]).map((h) => Buffer.from(h).toString('hex')), want);
    assert.equal(ev[2], null, 'first block has no parent');
    assert.deepEqual(ev[3], prompt.slice(0, 12));
    assert.equal(ev[4], 4);
    assert.equal(ev[6], 'GPU');

    // a prompt of 8 blocks needs the whole pool: the cached blocks are evicted (tail of the prefix first)
    engine.addRequest({ requestId: 'b', promptTokenIds: Array.from({ length: 29 }, (_, i) => (i * 7 + 40) % 50), sampling });
    while (engine.hasWork()) await engine.step();
    const removed = new Set<string>();
    const deadline = Date.now() + 10_000;
    while (removed.size < 3 && Date.now() < deadline) {
      const [, , p] = await sub.receive();
      for (const e of decodeBatch(p!).events) if (e.type === 'BlockRemoved') for (const h of e.blockHashes) removed.add(h);
    }
    assert.deepEqual([...removed].sort(), [...want].sort());
    assert.equal(pub.dropped, 0);
  } finally {
    sub.close();
    await pub.close();
  }
});

test('replay: a DEALER asking from seq 1 gets the buffered batches from 1, then the -1 end marker', async () => {
  const pub = await KvEventPublisher.start(cfg({ replay_endpoint: 'tcp://127.0.0.1:0', buffer_steps: 2 }));
  const dealer = new zmq.Dealer({ receiveTimeout: 10_000, linger: 0 });
  try {
    for (let i = 0; i < 3; i++) {
      pub.removed([String(1000 + i)]);
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 100));
    dealer.connect(pub.replayEndpoint!);
    await dealer.send(['', encodeSeq(1n)]);
    const got: bigint[] = [];
    for (;;) {
      const [, s, p] = await dealer.receive();
      const seq = decodeSeq(s!);
      if (seq === -1n) break;
      got.push(seq);
      assert.equal(decodeBatch(p!).events[0]!.type, 'BlockRemoved');
    }
    assert.deepEqual(got, [1n, 2n], 'buffer_steps 2 keeps the last two');
  } finally {
    dealer.close();
    await pub.close();
  }
});

test('a full send queue drops the oldest batches and counts them; the engine side never waits', async () => {
  const pub = await KvEventPublisher.start(cfg({ max_queue_size: 1 }));
  try {
    const t0 = process.hrtime.bigint();
    // many turns' worth of batches queued faster than the pump can drain them
    for (let i = 0; i < 200; i++) {
      pub.removed([String(i)]);
      (pub as unknown as { flush(): void }).flush();
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(pub.dropped > 0, `dropped ${pub.dropped}`);
    assert.ok(ms < 5000, 'sink calls return at once');
  } finally {
    await pub.close();
  }
});
