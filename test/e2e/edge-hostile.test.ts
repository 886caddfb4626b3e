// Issue 9 acceptance 4, 6 and 8 through a real 1P1D deployment on loopback (demo model, internal secret,
// API keys): a 56 MiB prompt and a 10,000-prompt request get a 400 while a canary request every 200 ms
// keeps being answered (its p99 is printed); the API key guards /v1/*, /health stays open, internal
// endpoints refuse the users' key; forged kv_transfer_params make no engine contact a listener we own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateInternalSecretFile } from '../../src/security/internal-secret.js';
import { signRequest } from '../../src/security/request-signing.js';
import { spawnPdserve, type Spawned } from '../helpers/spawn-server.js';

const USER = { authorization: 'Bearer sk-user' };

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw, signal: AbortSignal.timeout(60_000) });
  const text = await r.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

/** A loopback listener that counts the connections made to it. */
async function countingListener(): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const s: Server = createServer((sock) => { n++; sock.destroy(); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  return { port, count: () => n, close: () => new Promise((r) => s.close(() => r())) };
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

test('hostile input through 1P1D: 400s, a live canary, API keys, internal endpoints, no SSRF', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pds-edge-'));
  const secretPath = join(dir, 'internal.secret');
  const secret = generateInternalSecretFile(secretPath);
  const allowed = await countingListener(); // the one peer the decoder is told about
  const forged = await countingListener(); // where forged params point
  const kvYaml = join(dir, 'decoder.yaml');
  writeFileSync(kvYaml, 'chunk_size: 256\nlocal_cpu: true\nmax_local_cpu_size: 1\ntransfer_channel: cuda_ipc\nblocking_timeout_secs: 2\n');
  const common = ['--internal-secret-file', secretPath, '--api-key', 'sk-user', '--max-request-body-bytes', '64M', '--tokenizer-pool-size', '1'];
  const procs: Spawned[] = [];
  try {
    const P = await spawnPdserve(['serve', ...common]);
    procs.push(P);
    const D = await spawnPdserve(['serve', ...common, '--kv-config', kvYaml, '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_consumer"}',
      '--kv-peer-allowlist', `127.0.0.1:${allowed.port}`]);
    procs.push(D);
    const X = await spawnPdserve(['proxy', '--prefiller', P.url, '--decoder', D.url, '--internal-secret-file', secretPath, '--api-key', 'sk-user',
      '--max-request-body-bytes', '64M', '--stats-interval', '0']);
    procs.push(X);
    const small = { model: 'pdserve-demo', prompt: 'Once upon a time', max_tokens: 2, temperature: 0 };

    // --- acceptance 6: keys on /v1/*, /health open, internal endpoints refuse the users' key
    for (const s of [X, P, D]) {
      assert.equal((await post(`${s.url}/v1/completions`, small)).status, 401, `${s.url}: no key`);
      assert.equal((await post(`${s.url}/v1/completions`, small, { authorization: 'Bearer wrong' })).status, 401, `${s.url}: wrong key`);
      assert.equal((await fetch(`${s.url}/health`)).status, 200, `${s.url}: /health open`);
    }
    const ok = await post(`${X.url}/v1/completions`, small, USER);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.error, undefined);
    for (const s of [P, D]) {
      const rel = await post(`${s.url}/v1/kv/release`, { request_id: 'x' }, USER);
      assert.equal(rel.status, 403, `${s.url}/v1/kv/release with the users' key`);
      assert.equal(rel.json.error.type, 'PermissionDeniedError');
      assert.equal((await post(`${s.url}/v1/kv/release`, { request_id: 'x' })).status, 401);
      assert.equal((await fetch(`${s.url}/debug/integrity`, { headers: USER })).status, 403);
      const integ = await fetch(`${s.url}/debug/integrity`, { headers: signRequest(secret.key, 'GET', '/debug/integrity', null) });
      assert.equal(integ.status, 200, 'a signed internal request is served');
    }

    // --- acceptance 8: forged kv_transfer_params reach no listener outside the allowlist
    const forgedParams = (port: number) => ({
      do_remote_prefill: true, do_remote_decode: false, remote_engine_id: 'evil', remote_request_id: 'victim',
      remote_host: '127.0.0.1', remote_port: port, remote_block_ids: [0, 1, 2], remote_ipc_handle: 'AAAA', tp_size: 1,
    });
    const forgedBody = { ...small, prompt: 'Once upon a time there was a forged request', kv_transfer_params: forgedParams(forged.port) };
    assert.equal((await post(`${X.url}/v1/completions`, forgedBody, USER)).status, 200, 'through the proxy');
    assert.equal((await post(`${D.url}/v1/completions`, forgedBody, USER)).status, 200, 'straight to the decoder');
    const signedRaw = JSON.stringify(forgedBody);
    const signed = await post(`${D.url}/v1/completions`, signedRaw, signRequest(secret.key, 'POST', '/v1/completions', signedRaw));
    assert.equal(signed.status, 200, 'signed, but naming a peer outside the allowlist');
    // positive control: signed params naming the allowlisted peer do make the decoder contact it
    const controlRaw = JSON.stringify({ ...forgedBody, kv_transfer_params: forgedParams(allowed.port) });
    assert.equal((await post(`${D.url}/v1/completions`, controlRaw, signRequest(secret.key, 'POST', '/v1/completions', controlRaw))).status, 200);
    const until = Date.now() + 10_000;
    while (allowed.count() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(allowed.count() >= 1, 'control: the allowlisted listener was contacted');
    assert.equal(forged.count(), 0, 'no connection to the forged listener');
    console.log(`# forged listener connections: ${forged.count()} (allowlisted control: ${allowed.count()})`);

    // --- acceptance 4: a 56 MiB prompt and 10,000 prompts -> 400, the canary keeps being answered
    const lat: number[] = [];
    let canaryFailures = 0;
    let running = true;
    const canary = (async () => {
      while (running) {
        const t0 = performance.now();
        const r = await post(`${X.url}/v1/completions`, small, USER).catch(() => ({ status: 0 }));
        if (r.status === 200) lat.push(performance.now() - t0);
        else canaryFailures++;
        await new Promise((res) => setTimeout(res, 200));
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));
    const big = JSON.stringify({ ...small, prompt: 'x'.repeat(56 * 1024 * 1024) });
    const t0 = performance.now();
    const rb = await post(`${X.url}/v1/completions`, big, USER);
    const bigMs = performance.now() - t0;
    assert.equal(rb.status, 400, rb.text.slice(0, 300));
    assert.match(rb.json.error.message, /refused before tokenization/);
    assert.ok(bigMs < 20_000, `56 MiB answered in ${bigMs.toFixed(0)} ms`);
    const many = await post(`${X.url}/v1/completions`, { ...small, prompt: Array.from({ length: 10_000 }, () => 'Once upon a time') }, USER);
    assert.equal(many.status, 400, many.text.slice(0, 300));
    assert.equal(many.json.error.param, 'prompt');
    await new Promise((r) => setTimeout(r, 2000));
    running = false;
    await canary;
    for (const s of [P, D]) assert.equal((await fetch(`${s.url}/health`)).status, 200, 'no engine died');
    assert.equal(canaryFailures, 0, 'every canary request was answered');
    assert.ok(lat.length >= 5, `canary answered ${lat.length} times`);
    console.log(`# 56 MiB prompt: 400 in ${bigMs.toFixed(0)} ms; canary: ${lat.length} requests, p99 ${p99(lat).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`);
  } finally {
    for (const s of procs.reverse()) await s.stop();
    await allowed.close();
    await forged.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
