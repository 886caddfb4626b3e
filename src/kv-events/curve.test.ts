// CurveZMQ on the KV-event sockets: keys derived from the internal secret agree with libzmq's own key
// math, a subscriber holding the secret receives the engine's batches, and one with another secret or
// in plaintext receives nothing and is refused by the ZAP handler (counted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { kvEventsCurve, x25519Public, z85Encode } from './curve.js';
import { z85Decode, zapDenied } from './zap.js';
import { KvEventPublisher } from './publisher.js';
import { KvEventSubscriber } from './subscriber.js';
import { parseKvEventsConfig } from './config.js';
import type { KvEvent } from './wire.js';

test('z85 round trip and the RFC 32 test vector', () => {
  const v = Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]);
  assert.equal(z85Encode(v), 'HelloWorld');
  assert.deepEqual(z85Decode('HelloWorld'), v);
  const b = randomBytes(32);
  assert.deepEqual(z85Decode(z85Encode(b)), b);
});

test('derived public keys match libzmq\'s (zmq.curveKeyPair)', () => {
  for (let i = 0; i < 4; i++) {
    const kp = zmq.curveKeyPair();
    assert.equal(z85Encode(x25519Public(z85Decode(kp.secretKey))), kp.publicKey);
  }
  const a = kvEventsCurve(Buffer.alloc(32, 7));
  assert.deepEqual(kvEventsCurve(Buffer.alloc(32, 7)), a, 'same secret, same keys in every process');
  assert.notEqual(kvEventsCurve(Buffer.alloc(32, 8)).server.publicKey, a.server.publicKey);
  assert.notEqual(a.client.publicKey, a.server.publicKey);
});

const ev: KvEvent = { type: 'AllBlocksCleared' };

function collect(endpoint: string, curve: ReturnType<typeof kvEventsCurve> | null) {
  const got: KvEvent[] = [];
  const sub = new KvEventSubscriber({ endpoint, curve, onEvents: (e) => got.push(...e), onReset: () => undefined });
  return { sub, got };
}

test('CURVE publisher: the secret holder receives; another secret, plaintext and a foreign client key are refused', async () => {
  const secret = randomBytes(32);
  const keys = kvEventsCurve(secret);
  const pub = await KvEventPublisher.start(parseKvEventsConfig('{"enable_kv_cache_events":true,"endpoint":"tcp://127.0.0.1:0"}'), 0, keys);
  const good = collect(pub.endpoint, keys);
  const denied0 = zapDenied();
  const wrong = collect(pub.endpoint, kvEventsCurve(randomBytes(32)));
  const plain = collect(pub.endpoint, null);
  // knows the server's public key (as if it leaked) but not the secret-derived client key: ZAP refuses it
  const stranger = collect(pub.endpoint, { server: keys.server, client: zmq.curveKeyPair() });
  try {
    // PUB/SUB slow joiner: publish until the good subscriber has something (bounded)
    for (let i = 0; i < 100 && !good.got.length; i++) {
      pub.cleared();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(good.got.length > 0, 'the subscriber holding the secret receives batches');
    assert.deepEqual(good.got[0], ev);
    for (let i = 0; i < 5; i++) pub.cleared();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(wrong.got.length, 0, 'a subscriber with another secret receives nothing');
    assert.equal(plain.got.length, 0, 'a plaintext subscriber receives nothing');
    assert.equal(stranger.got.length, 0, 'a client key not derived from the secret receives nothing');
    assert.ok(zapDenied() > denied0, 'the stranger\'s handshake was refused by ZAP');
  } finally {
    await Promise.all([good.sub.close(), wrong.sub.close(), plain.sub.close(), stranger.sub.close()]);
    await pub.close();
  }
});

test('two CURVE publishers in one process share the ZAP handler; it comes back after all closed', async () => {
  const cfg = parseKvEventsConfig('{"enable_kv_cache_events":true,"endpoint":"tcp://127.0.0.1:0"}');
  for (let round = 0; round < 2; round++) {
    const k1 = kvEventsCurve(randomBytes(32)), k2 = kvEventsCurve(randomBytes(32));
    const p1 = await KvEventPublisher.start(cfg, 0, k1);
    const p2 = await KvEventPublisher.start(cfg, 0, k2);
    const s1 = collect(p1.endpoint, k1), s2 = collect(p2.endpoint, k2);
    try {
      for (let i = 0; i < 100 && (!s1.got.length || !s2.got.length); i++) {
        p1.cleared();
        p2.cleared();
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(s1.got.length && s2.got.length, `round ${round}: both subscribers receive`);
    } finally {
      await Promise.all([s1.sub.close(), s2.sub.close()]);
      await p1.close();
      await p2.close();
    }
  }
});
