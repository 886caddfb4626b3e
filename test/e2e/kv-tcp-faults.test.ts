// TcpConnector faults with real engines (issue 10, acceptance 3), the two legs sent by this test as a
// proxy would (signed with the internal secret): the prefiller killed after answering (the decoder
// recomputes within its timeout: same tokens), a decoder that never pulls (the prefiller frees at lease
// expiry with a warning), a prefiller restarted on the same transport port (fresh handshake, no
// stale-peer error).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateInternalSecretFile, INTERNAL_SECRET_FILE_ENV, loadInternalSecret } from '../../src/security/internal-secret.js';
import { signRequest } from '../../src/security/request-signing.js';
import { freePort, postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { singleEngineGreedy } from '../helpers/single-engine.js';

const PROMPT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends every day.';
const cfg = (role: string, extra: Record<string, unknown> = {}) => JSON.stringify({ kv_connector: 'TcpConnector', kv_role: role, kv_connector_extra_config: extra });

describe('TcpConnector faults (real engines)', { timeout: 240_000 }, () => {
  let dir = '';
  let key: Buffer;
  let env: NodeJS.ProcessEnv = {};
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pds-kv-tcp-faults-'));
    const f = join(dir, 'secret');
    generateInternalSecretFile(f);
    key = loadInternalSecret(f).key;
    env = { [INTERNAL_SECRET_FILE_ENV]: f };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A signed (peer) completion request, as the proxy sends each leg. */
  const leg = (s: Spawned, body: Record<string, unknown>) => {
    const raw = JSON.stringify(body);
    return postJson(`${s.url}/v1/completions`, raw, signRequest(key, 'POST', '/v1/completions', raw));
  };
  // each pair of legs its own prompt: the decoder's prefix cache never hides a pull
  const prefillLeg = (P: Spawned, prompt = PROMPT) => leg(P, { prompt, max_tokens: 1, temperature: 0, kv_transfer_params: { do_remote_decode: true } });
  const decodeLeg = (D: Spawned, params: unknown, prompt = PROMPT) => leg(D, { prompt, max_tokens: 16, temperature: 0, ignore_eos: true, return_token_ids: true, kv_transfer_params: params });
  async function untilLog(s: Spawned, re: RegExp, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!re.test(s.logs())) {
      if (Date.now() > end) throw new Error(`no ${re} in the log within ${ms} ms:\n${s.logs().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('prefiller killed after answering: the decoder recomputes within its timeout, same tokens; a decoder that never pulls lets the lease expire', async () => {
    const [want] = await singleEngineGreedy([PROMPT], 16, { env });
    const P = await spawnPdserve(['serve', '--kv-transfer-config', cfg('kv_producer', { lease_secs: 1.5 })], { env });
    const D = await spawnPdserve(['serve', '--kv-transfer-config', cfg('kv_consumer', { load_timeout_secs: 5 })], { env });
    try {
      // never pulled: freed at lease expiry, with the warning
      const p0 = await prefillLeg(P);
      assert.equal(p0.status, 200, JSON.stringify(p0.json));
      assert.equal(p0.json.kv_transfer_params.do_remote_prefill, true);
      await untilLog(P, /KV lease expired after .* freeing its \d+ blocks/, 15_000);
      // answered, then killed: the decoder's pull fails, it recomputes
      const p1 = await prefillLeg(P);
      assert.equal(p1.status, 200);
      await P.stop('SIGKILL');
      const t0 = Date.now();
      const d = await decodeLeg(D, p1.json.kv_transfer_params);
      assert.equal(d.status, 200, JSON.stringify(d.json));
      assert.ok(Date.now() - t0 < 20_000, `the decode leg took ${Date.now() - t0} ms`);
      assert.deepEqual(d.json.choices[0].token_ids, want);
      assert.match(D.logs(), /KV pull over tcp from 127\.0\.0\.1:\d+ failed .* recomputes the prompt/);
      const ok = await postJson(`${D.url}/v1/completions`, { prompt: 'The cat', max_tokens: 2, temperature: 0 });
      assert.equal(ok.status, 200, 'the decoder still serves');
    } finally {
      await Promise.all([D.stop(), P.stop()]);
    }
  });

  it('a prefiller restarted on the same transport port: the decoder handshakes afresh and pulls (no stale peer)', async () => {
    const port = await freePort();
    const mk = () => spawnPdserve(['serve', '--kv-transfer-config', cfg('kv_producer', { port })], { env });
    const D = await spawnPdserve(['serve', '--kv-transfer-config', cfg('kv_consumer')], { env });
    let P = await mk();
    try {
      const a = await prefillLeg(P, `${PROMPT} One.`);
      assert.equal((await decodeLeg(D, a.json.kv_transfer_params, `${PROMPT} One.`)).status, 200);
      const first = a.json.kv_transfer_params.remote_engine_id as string;
      await P.stop();
      P = await mk();
      const b = await prefillLeg(P, `${PROMPT} Two.`);
      assert.notEqual(b.json.kv_transfer_params.remote_engine_id, first, 'a restart is a new instance');
      assert.equal(b.json.kv_transfer_params.remote_port, port);
      const d = await decodeLeg(D, b.json.kv_transfer_params, `${PROMPT} Two.`);
      assert.equal(d.status, 200);
      assert.equal((D.logs().match(/\(P2P tcp\)/g) ?? []).length, 2, D.logs().slice(-3000));
      assert.doesNotMatch(D.logs(), /KV pull over tcp .* failed/);
      // the old instance's params are refused as restarted, never served stale: recompute
      const stale = await decodeLeg(D, a.json.kv_transfer_params, `${PROMPT} Three, a new one.`);
      assert.equal(stale.status, 200);
      assert.match(D.logs(), /failed \(.*restarted/);
    } finally {
      await Promise.all([D.stop(), P.stop()]);
    }
  });
});
