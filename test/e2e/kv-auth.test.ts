// Issue 9: engines and kv-server authenticate each other (demo model, real processes on loopback).
// 1. kv-server + prefiller + decoder sharing the internal secret: P/D answers equal a single engine's and the
//    decoder loads from the pool; a client without the secret is refused at connect.
// 2. a kv-server without the secret on the expected port: the engine refuses it, logs it, computes locally
//    (the answer is still right) and writes nothing into it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { spawnKvServer } from '../helpers/spawn-kv-server.js';
import { generateInternalSecretFile } from '../../src/security/internal-secret.js';
import { KvClient } from '../../src/kv/server/kv-client.js';
import { Op } from '../../src/kv/server/protocol.js';

const model = 'pdserve-demo';
const prompt = 'Once upon a time there was a little fox who lived in a quiet forest near the river. Every morning the fox';
const body = { model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true, return_token_ids: true };
const kvEnv = (port: number) => ({ PDSERVE_KV_REMOTE_URL: `pdkv://127.0.0.1:${port}`, PDSERVE_KV_LOCAL_CPU: 'false', PDSERVE_KV_CHUNK_SIZE: '16', PDSERVE_LOG_LEVEL: 'INFO' });

async function tokens(url: string): Promise<{ ids: number[]; cached: number }> {
  const r = await postJson(`${url}/v1/completions`, body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return { ids: r.json.choices[0].token_ids, cached: r.json.usage.prompt_tokens_details?.cached_tokens ?? 0 };
}

test('kv-server and engines authenticate each other; impostors and secret-less clients are refused', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync('/tmp/pds-e2e-kvauth-');
  const secretFile = join(dir, 'internal.secret');
  const secret = generateInternalSecretFile(secretFile);
  const procs: Array<Spawned | undefined> = [];
  const kvs: ChildProcess[] = [];
  try {
    const ref = await spawnPdserve(['serve', model]);
    procs.push(ref);
    const want = (await tokens(ref.url)).ids;

    // 1. the real deployment
    const kvPort = await freePort();
    const kv = await spawnKvServer(kvPort, secretFile);
    kvs.push(kv.proc);
    const env = { ...kvEnv(kvPort), PDSERVE_INTERNAL_SECRET_FILE: secretFile };
    const p = await spawnPdserve(['serve', model, '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_producer"}'], { env });
    const d = await spawnPdserve(['serve', model, '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_consumer"}'], { env });
    procs.push(p, d);
    // a client without the secret: refused at connect, before any op
    const none = new KvClient({ host: '127.0.0.1', port: kvPort, timeoutMs: 2000, backoffMs: 100 });
    await assert.rejects(none.request(Op.LOOKUP, [Buffer.from([0, 0, 0, 0, 0])]), /refused: it requires the internal secret/);
    none.close();
    await postJson(`${p.url}/v1/completions`, { ...body, max_tokens: 1 });
    const got = await tokens(d.url);
    assert.deepEqual(got.ids, want, 'P/D tokens equal the single engine');
    assert.ok(got.cached > 0, `decoder loaded KV from the pool (cached ${got.cached})`);
    const admin = new KvClient({ host: '127.0.0.1', port: kvPort, timeoutMs: 2000, backoffMs: 100, secret: secret.key });
    const st = JSON.parse((await admin.request(Op.STATS, [])).payload.toString());
    admin.close();
    assert.ok(st.chunks > 0);
    assert.ok(st.authFailures >= 0 && st.unauthenticated === 0);

    // 2. an impostor without the secret on the port the engine expects
    const fakePort = await freePort();
    const fake = await spawnKvServer(fakePort, null);
    kvs.push(fake.proc);
    const e = await spawnPdserve(['serve', model, '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_both"}'], { env: { ...kvEnv(fakePort), PDSERVE_INTERNAL_SECRET_FILE: secretFile } });
    procs.push(e);
    const g = await tokens(e.url);
    assert.deepEqual(g.ids, want, 'computed locally, still right');
    assert.equal(g.cached, 0);
    assert.match(e.logs(), /kv-server 127\.0\.0\.1:\d+ refused: it has no internal secret/);
    const probe = new KvClient({ host: '127.0.0.1', port: fakePort, timeoutMs: 2000, backoffMs: 100 });
    const fst = JSON.parse((await probe.request(Op.STATS, [])).payload.toString());
    probe.close();
    assert.equal(fst.chunks, 0, 'nothing written into the impostor\'s pool');
    assert.match(fake.out(), /NO INTERNAL SECRET/);
  } finally {
    await Promise.all(procs.map((x) => x?.stop()));
    for (const k of kvs) k.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});

