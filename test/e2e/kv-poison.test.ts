// Issue 9 acceptance 1: the KV poisoning attack of the issue, replayed against a real deployment
// (kv-server + prefiller + decoder + proxy sharing an internal secret, demo model, loopback).
// The attacker computes the victim prompt's chunk keys exactly as the engines do (chunk-hash.ts over the
// model identity), checked by a LOOKUP that hits every one of them. Then:
//  - without the secret: refused at connect, for DELETE and PUT alike; nothing changes in the pool;
//  - with the secret but as another writer: DELETE -> FORBIDDEN, PUT and ALLOC of the keys -> EXISTS,
//    the committed bytes are unchanged;
//  - 10 later victims through the proxy load the chunks from the pool and get exactly a single engine's tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';
import { freePort, postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { spawnKvServer } from '../helpers/spawn-kv-server.js';
import { generateInternalSecretFile } from '../../src/security/internal-secret.js';
import { KvClient } from '../../src/kv/server/kv-client.js';
import { Op, Status } from '../../src/kv/server/protocol.js';
import { chunkKeys, modelFingerprint } from '../../src/kv/chunk-hash.js';
import { parseModelConfig } from '../../src/engine/loader/model-config.js';

const model = 'pdserve-demo';
const CHUNK = 16;
const prompt = 'Once upon a time there was a little fox who lived in a quiet forest near the river. Every morning the fox went down to the water to drink, and then it ran back up the hill to look for berries under the old oak tree, where its friend the owl was sleeping';
const body = { model, prompt, max_tokens: 12, temperature: 0, ignore_eos: true, return_token_ids: true };
const kvEnv = (port: number, secretFile: string) => ({
  PDSERVE_KV_REMOTE_URL: `pdkv://127.0.0.1:${port}`, PDSERVE_KV_LOCAL_CPU: 'false', PDSERVE_KV_CHUNK_SIZE: String(CHUNK),
  PDSERVE_INTERNAL_SECRET_FILE: secretFile, PDSERVE_LOG_LEVEL: 'INFO',
});

async function answer(url: string): Promise<{ ids: number[]; cached: number }> {
  const r = await postJson(`${url}/v1/completions`, body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return { ids: r.json.choices[0].token_ids, cached: r.json.usage.prompt_tokens_details?.cached_tokens ?? 0 };
}

/** The demo model's identity as the engines key it (engine-factory identityOf; CPU: f32 KV). */
function demoRoot(): Buffer {
  const spec = parseModelConfig(JSON.parse(readFileSync(join(repoRoot, 'models', 'cards', model, 'config.json'), 'utf8')));
  return modelFingerprint({
    name: model, architecture: spec.arch, dtype: spec.spec.weightDtype, numLayers: spec.spec.numLayers,
    numKvHeads: spec.spec.numKvHeads, headDim: spec.spec.headDim, kvDtype: 'f32',
  });
}

const lookupPayload = (keys: Buffer[]) => {
  const h = Buffer.alloc(5);
  h.writeUInt32LE(keys.length, 1);
  return [h, ...keys];
};

test('kv poisoning: refused without the secret, and refused for a writer that is not the chunk\'s; victims get the right tokens', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync('/tmp/pds-e2e-poison-');
  const secretFile = join(dir, 'internal.secret');
  const secret = generateInternalSecretFile(secretFile);
  const procs: Spawned[] = [];
  let kv: ChildProcess | null = null;
  const clients: KvClient[] = [];
  try {
    const ref = await spawnPdserve(['serve', model]);
    procs.push(ref);
    const want = (await answer(ref.url)).ids;

    const kvPort = await freePort();
    kv = (await spawnKvServer(kvPort, secretFile)).proc;
    const env = kvEnv(kvPort, secretFile);
    const P = await spawnPdserve(['serve', model, '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_producer"}'], { env });
    procs.push(P);
    const D = await spawnPdserve(['serve', model, '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_consumer"}'], { env });
    procs.push(D);
    const X = await spawnPdserve(['proxy', '--prefiller', P.url, '--decoder', D.url, '--internal-secret-file', secretFile, '--stats-interval', '0']);
    procs.push(X);

    // the first victim writes the prompt's chunks (through the prefiller)
    const first = await answer(X.url);
    assert.deepEqual(first.ids, want);

    // the attacker's keys, computed as the engines compute them
    const tok = await postJson(`${P.url}/tokenize`, { model, prompt });
    assert.equal(tok.status, 200, JSON.stringify(tok.json));
    const tokens: number[] = tok.json.tokens;
    const keys = chunkKeys(demoRoot(), tokens, CHUNK, false).map((c) => Buffer.from(c.key, 'hex'));
    assert.ok(keys.length >= 2, `${tokens.length} tokens: ${keys.length} full chunks`);
    const admin = new KvClient({ host: '127.0.0.1', port: kvPort, timeoutMs: 3000, backoffMs: 100, secret: secret.key });
    clients.push(admin);
    const hits = (await admin.request(Op.LOOKUP, lookupPayload(keys))).payload.readUInt32LE(0);
    assert.equal(hits, keys.length, 'the computed keys are the ones the prefiller committed');
    const before = await Promise.all(keys.map(async (k) => (await admin.request(Op.GET, [k])).payload));
    const stats = async () => JSON.parse((await admin.request(Op.STATS, [])).payload.toString('utf8'));
    const st0 = await stats();

    // 1. no secret: refused at connect, whatever the op
    for (const [op, parts] of [[Op.DELETE, [keys[0]!]], [Op.PUT, [keys[0]!, Buffer.alloc(before[0]!.length, 0x41)]], [Op.GET, [keys[0]!]]] as const) {
      const anon = new KvClient({ host: '127.0.0.1', port: kvPort, timeoutMs: 2000, backoffMs: 100 });
      clients.push(anon);
      await assert.rejects(anon.request(op, parts as unknown as Uint8Array[]), /refused: it requires the internal secret/, `op ${Op[op]}`);
      anon.close();
    }

    // 2. the secret, but another writer: no DELETE, no overwrite
    const insider = new KvClient({ host: '127.0.0.1', port: kvPort, timeoutMs: 3000, backoffMs: 100, secret: secret.key });
    clients.push(insider);
    for (let i = 0; i < keys.length; i++) {
      const del = await insider.request(Op.DELETE, [keys[i]!]);
      assert.equal(del.status, Status.FORBIDDEN, `DELETE chunk ${i}: ${del.payload}`);
      const put = await insider.request(Op.PUT, [keys[i]!, Buffer.alloc(before[i]!.length, 0x41)]);
      assert.equal(put.status, Status.EXISTS, `PUT over chunk ${i}: ${put.payload}`);
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(before[i]!.length));
      const alloc = await insider.request(Op.ALLOC, [keys[i]!, size]);
      assert.equal(alloc.status, Status.EXISTS, `ALLOC over chunk ${i}`);
    }
    const after = await Promise.all(keys.map(async (k) => (await admin.request(Op.GET, [k])).payload));
    for (let i = 0; i < keys.length; i++) assert.ok(after[i]!.equals(before[i]!), `chunk ${i}: bytes unchanged`);
    const st1 = await stats();
    assert.equal(st1.chunks, st0.chunks, 'no chunk deleted');
    assert.equal(st1.forbidden - st0.forbidden, keys.length, 'each refused DELETE counted');
    insider.close();

    // 3. later victims: the pool's chunks are used, and the tokens are right
    let loaded = 0;
    for (let i = 0; i < 10; i++) {
      const v = await answer(X.url);
      assert.deepEqual(v.ids, want, `victim ${i}`);
      if (v.cached >= keys.length * CHUNK) loaded++;
    }
    assert.ok(loaded >= 1, `victims loaded the chunks from the pool (${loaded} of 10)`);
    console.log(`# poisoning: ${keys.length} chunk keys computed and hit; 3 secret-less ops refused at connect; ${keys.length} DELETE FORBIDDEN, ${2 * keys.length} PUT/ALLOC EXISTS; 10 of 10 victims right (${loaded} loaded from the pool)`);
  } finally {
    for (const c of clients) c.close();
    for (const s of procs.reverse()) await s.stop();
    kv?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});
