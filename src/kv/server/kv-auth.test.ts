// kv-server authentication, pool file safety and per-connection limits (issue 9).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KvServer } from './kv-server.js';
import type { KvServerOptions } from './kv-server-options.js';
import { FrameReader, Op, PAGE_SIZE, Status, encodeHeader, encodeKeyList, isReadError, keyToBytes, u64, type Frame } from './protocol.js';
import { KvClient } from './kv-client.js';
import { PoolTier } from '../tiers/pool-tier.js';

const CHUNK = 64 * 1024;
const key = (s: string) => createHash('sha256').update(s).digest('hex');
const SECRET = randomBytes(32);
const started = new Set<KvServer>();
const tmp = mkdtempSync('/tmp/pds-kv-auth-');
after(async () => {
  for (const s of started) await s.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function start(extra: Partial<KvServerOptions> = {}): Promise<KvServer> {
  const s = await KvServer.start({ host: '127.0.0.1', port: 0, poolSize: PAGE_SIZE + 8 * CHUNK, quiet: true, allocQuarantineMs: 20, ...extra });
  started.add(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await sleep(5);
  }
}

/** A bare socket that reads reply frames and notes when it is closed. */
async function bare(port: number): Promise<{ sock: Socket; frames: Frame[]; closed: () => boolean }> {
  const sock = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
  const frames: Frame[] = [];
  let closed = false;
  const r = new FrameReader(2 ** 31);
  sock.on('data', (c: Buffer) => {
    for (const f of r.push(c)) if (!isReadError(f)) frames.push(f);
  });
  sock.on('error', () => {});
  sock.on('close', () => (closed = true));
  return { sock, frames, closed: () => closed };
}

describe('kv-server authentication', () => {
  it('refuses a client without the secret at connect, before any op; serves one with it', async () => {
    const s = await start({ secret: SECRET });
    const raw = await bare(s.port);
    raw.sock.write(Buffer.concat([encodeHeader(Op.LOOKUP, 0, 1, 37), encodeKeyList([key('x')], 0)]));
    await waitFor(raw.closed);
    assert.equal(raw.frames[0]?.status, Status.UNAUTHORIZED, 'LOOKUP before AUTH: refused, no oracle');

    const none = new KvClient({ host: '127.0.0.1', port: s.port, timeoutMs: 1000, backoffMs: 50 });
    await assert.rejects(none.request(Op.STATS, []), /refused: it requires the internal secret/);
    none.close();
    const wrong = new KvClient({ host: '127.0.0.1', port: s.port, timeoutMs: 1000, backoffMs: 50, secret: randomBytes(32) });
    await assert.rejects(wrong.request(Op.STATS, []), /refused: it could not prove the internal secret/);
    wrong.close();

    const good = new PoolTier({ host: '127.0.0.1', port: s.port, transport: 'auto', timeoutMs: 1000, backoffMs: 50, secret: SECRET });
    assert.equal(await good.put(key('a'), Buffer.alloc(CHUNK, 3)), true);
    assert.equal(good.mode, 'shm');
    assert.equal(await good.lookupPrefix([key('a')]), 1);
    await good.close();
    await waitFor(() => s.stats().connections === 0);
    assert.ok(s.stats().authFailures >= 1, 'the raw LOOKUP counted (the clients refused on their side)');
  });

  it('an engine with a secret refuses a server without one (port takeover) and counts it as down', async () => {
    const s = await start();
    const tier = new PoolTier({ host: '127.0.0.1', port: s.port, transport: 'auto', timeoutMs: 1000, backoffMs: 50, secret: SECRET });
    assert.equal(await tier.lookupPrefix([key('a')]), 0, 'a miss, not an error');
    await assert.rejects(tier.put(key('a'), Buffer.alloc(CHUNK)), /unavailable|refused/);
    assert.match(tier.client.refusal ?? '', /no internal secret/);
    await tier.close();
    assert.equal(s.stats().chunks, 0, 'nothing was written to the impostor');
  });

  it('a server without a secret refuses to listen beyond loopback', async () => {
    await assert.rejects(start({ host: '0.0.0.0' }), /refusing to listen on 0\.0\.0\.0 without an internal secret/);
  });
});

describe('kv-server pool file', () => {
  it('defaults to a private 0700 directory with a 0600 file, removed at stop', async () => {
    const s = await start();
    const f = s.opts.poolFile;
    assert.equal(statSync(dirname(f)).mode & 0o777, 0o700);
    assert.equal(statSync(f).mode & 0o777, 0o600);
    await s.stop();
    started.delete(s);
    assert.equal(existsSync(dirname(f)), false);
  });

  it('never follows a symlink planted at the pool path', async () => {
    const target = join(tmp, 'victim');
    const link = `/dev/shm/pdserve-test-link-${randomBytes(6).toString('hex')}`;
    symlinkSync(target, link);
    try {
      await assert.rejects(start({ poolFile: link }), /symlink/);
      assert.equal(existsSync(target), false, 'no file created through the link');
      assert.ok(lstatSync(link).isSymbolicLink());
    } finally {
      rmSync(link, { force: true });
    }
  });
});

describe('kv-server per-connection limits', () => {
  it('closes never-finished frames, silent and unauthenticated connections after their timeouts', async () => {
    const s = await start({ frameTimeoutMs: 200, idleTimeoutMs: 600, authTimeoutMs: 300 });
    const silentPreAuth = await bare(s.port);
    const t = new KvClient({ host: '127.0.0.1', port: s.port, timeoutMs: 1000, backoffMs: 50 });
    await t.request(Op.PING, []);
    const sock = (t as unknown as { sock: Socket }).sock;
    sock.write(encodeHeader(Op.LOOKUP, 0, 99, 1000)); // a frame begun, never finished
    await waitFor(() => !t.connected, 2000);
    await waitFor(silentPreAuth.closed, 2000);
    // a client that pings stays; one that says nothing past the idle timeout goes
    const pinger = new KvClient({ host: '127.0.0.1', port: s.port, timeoutMs: 1000, backoffMs: 50 });
    await pinger.request(Op.PING, []);
    const quiet = await bare(s.port);
    await sleep(1200);
    assert.equal(pinger.connected, true, 'heartbeat keeps a well-behaved idle client');
    assert.equal(quiet.closed(), true);
    assert.ok(s.stats().timeouts >= 3);
    pinger.close();
    t.close();
  });

  it('bounds connections, uncommitted allocations and pins', async () => {
    const s = await start({ maxConnections: 3, maxUncommitted: 2, maxUncommittedBytes: 3 * CHUNK, maxPins: 2 });
    const c = new KvClient({ host: '127.0.0.1', port: s.port, timeoutMs: 1000, backoffMs: 50 });
    const alloc = (k: string) => c.request(Op.ALLOC, [keyToBytes(key(k)), u64(CHUNK)]);
    assert.equal((await alloc('a')).status, Status.OK);
    assert.equal((await alloc('b')).status, Status.OK);
    assert.equal((await alloc('c')).status, Status.LIMIT, 'count');
    await c.request(Op.COMMIT, [keyToBytes(key('a'))]);
    assert.equal((await c.request(Op.ALLOC, [keyToBytes(key('big')), u64(3 * CHUNK)])).status, Status.LIMIT, 'bytes');
    await c.request(Op.COMMIT, [keyToBytes(key('b'))]);
    const pin = await c.request(Op.LOOKUP, [encodeKeyList([key('a'), key('b')], 1)]);
    assert.equal(pin.payload.readUInt32LE(0), 2);
    assert.equal((await c.request(Op.LOOKUP, [encodeKeyList([key('a')], 1)])).payload.readUInt32LE(0), 0, 'at the pin limit: no more hits pinned');
    assert.equal((await c.request(Op.GET_LOC, [keyToBytes(key('a'))])).status, Status.LIMIT);
    const extra = await Promise.all([bare(s.port), bare(s.port), bare(s.port)]);
    await waitFor(() => extra.filter((x) => x.closed()).length >= 1);
    assert.ok(s.stats().refusedConnections >= 1);
    for (const x of extra) x.sock.destroy();
    c.close();
    await waitFor(() => s.stats().connections === 0 && s.stats().pins === 0);
  });
});
