// The circuit breaker and the admission queue on their own (the router's tests drive them end to end).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker } from './circuit-breaker.js';
import { Admission } from './admission.js';

test('breaker: opens after N failures in a row, one half-open trial, closes on success, cooldown doubles', () => {
  let now = 0;
  const b = new CircuitBreaker(3, 1000, () => now);
  b.failure();
  b.failure();
  b.success(); // not in a row
  b.failure();
  b.failure();
  assert.equal(b.state, 'closed');
  b.failure();
  assert.equal(b.state, 'open');
  assert.equal(b.allows(), false);
  now = 999;
  assert.equal(b.allows(), false);
  now = 1000;
  assert.equal(b.allows(), true, 'the trial');
  assert.equal(b.state, 'half_open');
  assert.equal(b.allows(), false, 'only one trial at a time');
  b.failure();
  assert.equal(b.state, 'open', 'a failed trial reopens at once');
  now = 2999;
  assert.equal(b.allows(), false, 'second opening waits 2x');
  now = 3000;
  assert.equal(b.allows(), true);
  b.success();
  assert.equal(b.state, 'closed');
  assert.equal(b.openedTotal, 2);
  const off = new CircuitBreaker(0, 1000);
  for (let i = 0; i < 10; i++) off.failure();
  assert.equal(off.allows(), true, 'failures 0 = off');
});

test('admission: runs N, queues M in order, refuses beyond, times out, drops waiters whose client left', async () => {
  const a = new Admission(2, 2, 200);
  assert.equal(a.acquire(), true);
  assert.equal(a.acquire(), true);
  const order: number[] = [];
  const w1 = (a.acquire() as Promise<boolean>).then((ok) => (order.push(1), ok));
  const ac = new AbortController();
  const w2 = (a.acquire(ac.signal) as Promise<boolean>).then((ok) => (order.push(2), ok));
  assert.equal(a.acquire(), false, 'queue full: refused at once');
  ac.abort();
  assert.equal(await w2, false, 'a waiter whose client left is dropped');
  const w3 = (a.acquire() as Promise<boolean>).then((ok) => (order.push(3), ok));
  a.release();
  assert.equal(await w1, true);
  a.release();
  assert.equal(await w3, true);
  assert.deepEqual(order, [2, 1, 3]);
  const w4 = a.acquire() as Promise<boolean>;
  const t0 = Date.now();
  assert.equal(await w4, false, 'waited its queue timeout');
  assert.ok(Date.now() - t0 >= 150);
  a.release();
  a.release();
  assert.equal(a.acquire(), true, 'slots come back');
});
