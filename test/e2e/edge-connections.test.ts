// Issue 9 acceptance 5: idle, slow-header, slow-body and kept-alive connections are closed after their
// timeouts; with 2000 of them open a new client is still served, on the engine and on the proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { spawnPdserve, type Spawned } from '../helpers/spawn-server.js';

const TIMEOUTS = ['--http-headers-timeout', '2', '--http-request-timeout', '4', '--timeout-keep-alive', '1'];

interface Held { sock: Socket; closedAt: number | null }

async function open(port: number, kind: 'idle' | 'slow-headers' | 'slow-body' | 'keep-alive'): Promise<Held> {
  const sock = connect(port, '127.0.0.1');
  const h: Held = { sock, closedAt: null };
  sock.on('close', () => (h.closedAt = performance.now()));
  sock.on('error', () => {});
  sock.on('data', () => {});
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  if (kind === 'slow-headers') sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
  if (kind === 'slow-body') sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"prompt":"');
  if (kind === 'keep-alive') sock.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
  return h;
}

async function hold(s: Spawned, label: string) {
  const kinds = ['idle', 'slow-headers', 'slow-body', 'keep-alive'] as const;
  const held: Held[] = [];
  const t0 = performance.now();
  for (let i = 0; i < 2000; i += 50) held.push(...(await Promise.all(Array.from({ length: 50 }, (_, k) => open(s.port, kinds[(i + k) % 4]!)))));
  // a slow body keeps trickling, so only the whole-request timeout can end it
  const drip = setInterval(() => { for (let i = 2; i < held.length; i += 4) if (held[i]!.closedAt === null) held[i]!.sock.write('a'); }, 500);
  try {
    const t1 = performance.now();
    const r = await fetch(`${s.url}/health`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(r.status, 200, `${label}: a new client is served while 2000 connections are held`);
    const newClientMs = performance.now() - t1;
    const deadline = performance.now() + 20_000;
    while (held.some((h) => h.closedAt === null) && performance.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    const open = held.filter((h) => h.closedAt === null).length;
    assert.equal(open, 0, `${label}: ${open} of 2000 connections still open 20 s after their timeouts`);
    const byKind = kinds.map((k, i) => {
      const xs = held.filter((_, j) => j % 4 === i).map((h) => (h.closedAt! - t0) / 1000);
      return `${k} closed by ${Math.max(...xs).toFixed(1)} s`;
    });
    // the slow bodies outlive the header timeout: only the request timeout cut them
    const slowBody = held.filter((_, j) => j % 4 === 2).map((h) => (h.closedAt! - t0) / 1000);
    assert.ok(Math.min(...slowBody) >= 2.5, `${label}: slow bodies were kept until the request timeout (first closed at ${Math.min(...slowBody).toFixed(1)} s)`);
    console.log(`# ${label}: new client served in ${newClientMs.toFixed(0)} ms with 2000 held; ${byKind.join(', ')}`);
    const again = await fetch(`${s.url}/health`);
    assert.equal(again.status, 200);
  } finally {
    clearInterval(drip);
    for (const h of held) h.sock.destroy();
  }
}

test('2000 idle and slow connections are cut by their timeouts; new clients are served (engine and proxy)', { timeout: 180_000 }, async () => {
  const e = await spawnPdserve(['serve', ...TIMEOUTS, '--tokenizer-pool-size', '0']);
  let x: Spawned | null = null;
  try {
    await hold(e, 'engine');
    x = await spawnPdserve(['proxy', '--decoder', e.url, '--stats-interval', '0', ...TIMEOUTS]);
    await hold(x, 'proxy');
  } finally {
    await x?.stop();
    await e.stop();
  }
});
