import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseTable, type LeaseEnd } from './lease-table.js';

function table(ttlMs = 30_000) {
  let t = 1_000_000;
  const freed: Array<[string, number[], LeaseEnd]> = [];
  const warnings: string[] = [];
  const log = { debug() {}, info() {}, error() {}, warn: (m: string) => warnings.push(m) };
  const lt = new LeaseTable({ ttlMs, now: () => t, log, onFree: (id, ids, end) => freed.push([id, [...ids], end]) });
  return { lt, freed, warnings, advance: (ms: number) => (t += ms) };
}

describe('LeaseTable', () => {
  it('frees on the done-notification, once', () => {
    const { lt, freed } = table();
    lt.grant('r1', [3, 4, 5]);
    assert.equal(lt.covers('r1', Int32Array.of(4, 5)), true);
    assert.equal(lt.end('r1', 'done'), true);
    assert.equal(lt.end('r1', 'done'), false);
    assert.equal(lt.end('r1', 'abort'), false);
    assert.deepEqual(freed, [['r1', [3, 4, 5], 'done']]);
    assert.equal(lt.size, 0);
    assert.match(String(lt.covers('r1', Int32Array.of(4))), /no KV lease/);
  });

  it('expires after the ttl with a warning; heartbeats keep it alive', () => {
    const { lt, freed, warnings, advance } = table(30_000);
    lt.grant('a', [1]);
    lt.grant('b', [2]);
    advance(20_000);
    assert.equal(lt.renew('a'), true); // a now lives until +50 s
    advance(10_001);
    assert.equal(lt.sweep(), 1);
    assert.deepEqual(freed, [['b', [2], 'expired']]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /Reqid: b: KV lease expired after 30\.0 s \(0 heartbeats\)/);
    assert.equal(lt.renew('b'), false, 'an expired lease cannot be renewed');
    advance(19_000);
    assert.equal(lt.sweep(), 0);
    assert.equal(lt.covers('a', Int32Array.of(1)), true);
    advance(1_000);
    assert.match(String(lt.covers('a', Int32Array.of(1))), /no KV lease/, 'expired but not yet swept: no access');
    assert.equal(lt.renew('a'), false);
    assert.equal(lt.sweep(), 1);
    assert.equal(lt.size, 0);
    assert.deepEqual(lt.counters, { granted: 2, done: 0, aborted: 0, expired: 2, renewals: 1 });
  });

  it('abort frees; covers refuses blocks outside the lease and other peers', () => {
    const { lt, freed } = table();
    lt.grant('r', [7, 8], 'peer-A');
    assert.match(String(lt.covers('r', Int32Array.of(7, 9))), /block 9 is not leased/);
    assert.match(String(lt.covers('r', Int32Array.of(7), 'peer-B')), /another peer/);
    assert.equal(lt.covers('r', Int32Array.of(8, 7), 'peer-A'), true);
    assert.equal(lt.end('r', 'abort'), true);
    assert.deepEqual(freed, [['r', [7, 8], 'abort']]);
  });

  it('stop(true) aborts every lease', () => {
    const { lt, freed } = table();
    lt.grant('x', [1]);
    lt.grant('y', [2]);
    lt.start(50);
    lt.stop(true);
    assert.deepEqual(
      freed.map((f) => f[0] + f[2]),
      ['xabort', 'yabort'],
    );
  });
});
