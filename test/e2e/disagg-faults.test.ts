// Issue 3 acceptance 4–5: faults (kv-server killed, prefiller killed, decoder killed, client gone) never
// hang or leak; prefiller and decoder started with different environments still hit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { abortMidStream } from '../helpers/http-abort.js';
import { fixturesOrSkip, readReference, comparableSteps, type ReferenceCase } from '../helpers/fixtures.js';
import { postJson, spawnPdserve, freePort } from '../helpers/spawn-server.js';
import { spawnUp, type UpRun } from '../helpers/spawn-up.js';
import { KvClient } from '../../src/kv/server/kv-client.js';
import { loadInternalSecret } from '../../src/security/internal-secret.js';
import { Op } from '../../src/kv/server/protocol.js';
import { spawn } from 'node:child_process';
import { cliPath } from '../helpers/fixtures.js';
import { connect } from 'node:net';

const model = 'llama3-tiny';

/** pid and port of each child, from up's "started NAME (pid P) on port N" lines */
function children(up: UpRun): Map<string, { pid: number; port: number }> {
  const m = new Map<string, { pid: number; port: number }>();
  for (const x of up.output().matchAll(/started (\S+) \(pid (\d+)\) on port (\d+)/g)) m.set(x[1]!, { pid: Number(x[2]), port: Number(x[3]) });
  return m;
}

async function kvStats(port: number, secretFile: string): Promise<Record<string, number>> {
  // up's kv-server authenticates every client with the deployment's internal secret
  const c = new KvClient({ host: '127.0.0.1', port, timeoutMs: 3000, backoffMs: 100, secret: loadInternalSecret(secretFile).key });
  try {
    const r = await c.request(Op.STATS, []);
    return JSON.parse(r.payload.toString('utf8'));
  } finally {
    c.close();
  }
}

async function integrity(port: number) {
  const r = await fetch(`http://127.0.0.1:${port}/debug/integrity`);
  const j = (await r.json()) as any;
  assert.equal(r.status, 200, JSON.stringify(j));
  assert.equal(j.ok, true);
  assert.equal(j.blocks_free, j.blocks_total, `port ${port}: all blocks free`);
}

async function checkCase(url: string, c: ReferenceCase, maxTokens = 12) {
  const r = await postJson(`${url}/v1/completions`, { prompt: c.prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, return_token_ids: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const n = Math.min(maxTokens, comparableSteps(c));
  assert.deepEqual(r.json.choices[0].token_ids.slice(0, n), c.greedy.slice(0, n));
  return r.json;
}


test('faults: client gone, kv-server killed, prefiller killed, decoder killed', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const ref = readReference(fx, model);
  const up = await spawnUp([join(fx, 'models', model), '--prefill', '2', '--decode', '1', '--kv-pool-size', '128M', '--', '--max-num-seqs', '16']);
  try {
    const ch = children(up);
    const kv = ch.get('kv-server')!;
    const engines = [...ch.entries()].filter(([n]) => n.startsWith('prefiller') || n.startsWith('decoder'));
    await checkCase(up.url, ref.cases[3]!);

    // clients disconnecting mid-stream: both legs aborted, nothing leaks
    await Promise.all(Array.from({ length: 6 }, (_, k) => abortMidStream(up.url, { prompt: ref.cases[k % 4]!.prompt, max_tokens: 300, ignore_eos: true, stream: true })));
    await new Promise((r) => setTimeout(r, 1500));
    for (const [, e] of engines) await integrity(e.port);
    const st = await kvStats(kv.port, join(up.runDir, 'internal-secret'));
    assert.equal(st.writing, 0, 'no half-written chunk left');
    assert.equal(st.pinnedChunks, 0, 'no pins left');

    // kv-server killed: requests still complete correctly by local recompute
    process.kill(kv.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await Promise.all([5, 6, 7].map((i) => checkCase(up.url, ref.cases[i]!)));
    assert.ok(Date.now() - t0 < 30_000, 'recompute path did not wait for the dead kv-server');

    // a prefiller killed: the other serves
    process.kill(ch.get('prefiller-0')!.pid, 'SIGKILL');
    await Promise.all([0, 1, 2, 4].map((i) => checkCase(up.url, ref.cases[i]!)));
    await integrity(ch.get('prefiller-1')!.port);
    await integrity(ch.get('decoder-0')!.port);

    // the only decoder killed: 503 JSON
    process.kill(ch.get('decoder-0')!.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const r = await postJson(`${up.url}/v1/completions`, { prompt: [1, 2, 3], max_tokens: 2 });
    assert.equal(r.status, 503, JSON.stringify(r.json));
    assert.equal(typeof r.json.error.message, 'string');
  } finally {
    await up.stop();
  }
});

async function waitTcp(port: number, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never opened`);
}

test('prefiller and decoder with different environments (locale, TZ, NODE_OPTIONS, seeds) still hit', async (t) => {
  const fx = fixturesOrSkip(t);
  if (!fx) return;
  const ref = readReference(fx, model);
  const kvPort = await freePort();
  const pool = `/dev/shm/pdserve-test-env-${process.pid}.pool`;
  const kvProc = spawn(process.execPath, [cliPath, 'kv-server', '--host', '127.0.0.1', '--port', String(kvPort), '--pool-size', '64M', '--pool-file', pool], { stdio: 'ignore' });
  const dir = join(fx, 'models', model);
  const env = (extra: NodeJS.ProcessEnv) => ({ PDSERVE_KV_REMOTE_URL: `pdkv://127.0.0.1:${kvPort}`, ...extra });
  let p: Awaited<ReturnType<typeof spawnPdserve>> | undefined;
  let d: Awaited<ReturnType<typeof spawnPdserve>> | undefined;
  try {
    await waitTcp(kvPort);
    p = await spawnPdserve(['serve', dir, '--seed', '11', '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_producer"}'], {
      env: env({ LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8', TZ: 'Asia/Kolkata', NODE_OPTIONS: '--max-old-space-size=512', PYTHONHASHSEED: '1' }),
    });
    d = await spawnPdserve(['serve', dir, '--seed', '999', '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_consumer"}'], {
      env: env({ LANG: 'C', LC_ALL: 'C', TZ: 'America/Los_Angeles', NODE_OPTIONS: '--no-deprecation --max-old-space-size=700', PYTHONHASHSEED: '2' }),
    });
    const c = ref.cases[6]!; // 600 tokens
    await postJson(`${p.url}/v1/completions`, { prompt: c.prompt, max_tokens: 1, temperature: 0 });
    const j = await checkCase(d.url, c, 8);
    assert.ok(j.usage.prompt_tokens_details.cached_tokens >= c.prompt.length - 1, `cached ${j.usage.prompt_tokens_details.cached_tokens}`);
    assert.match(d.logs(), /Retrieved \d+ out of/);
  } finally {
    await Promise.all([p?.stop(), d?.stop()]);
    kvProc.kill('SIGTERM');
  }
});
