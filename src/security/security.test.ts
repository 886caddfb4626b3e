import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ApiKeyGuard, resolveApiKeys } from './api-key.js';
import { checkClientProof, checkServerProof, clientProof, newNonce, serverProof } from './handshake.js';
import { generateInternalSecretFile, loadInternalSecret, resolveInternalSecret } from './internal-secret.js';
import { AUTH_HEADER, checkReplyProof, NonceCache, signRequest, verifyRequest } from './request-signing.js';

const dir = mkdtempSync(join(tmpdir(), 'pds-sec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('internal secret file', () => {
  it('generates a 0600 file that loads back to the same key, and refuses to overwrite', () => {
    const p = join(dir, 'a.secret');
    const s = generateInternalSecretFile(p);
    assert.equal(s.key.length, 32);
    assert.deepEqual(loadInternalSecret(p).key, s.key);
    assert.throws(() => generateInternalSecretFile(p), /EEXIST/);
  });
  it('refuses a group/other-readable file, a symlink and bad contents', () => {
    const p = join(dir, 'b.secret');
    writeFileSync(p, 'ab'.repeat(32));
    chmodSync(p, 0o644);
    assert.throws(() => loadInternalSecret(p), /mode 644.*0600/);
    chmodSync(p, 0o600);
    assert.equal(loadInternalSecret(p).key.length, 32);
    const l = join(dir, 'link.secret');
    symlinkSync(p, l);
    assert.throws(() => loadInternalSecret(l), /symlink/);
    const bad = join(dir, 'bad.secret');
    writeFileSync(bad, 'not hex', { mode: 0o600 });
    assert.throws(() => loadInternalSecret(bad), /64 hex/);
    assert.throws(() => loadInternalSecret(join(dir, 'missing')), /ENOENT/);
  });
  it('resolves the flag first, then the env var, else null', () => {
    const p = join(dir, 'a.secret');
    assert.equal(resolveInternalSecret(null, {}), null);
    assert.equal(resolveInternalSecret(null, { PDSERVE_INTERNAL_SECRET_FILE: p })?.path, p);
    assert.throws(() => resolveInternalSecret(join(dir, 'nope'), { PDSERVE_INTERNAL_SECRET_FILE: p }), /ENOENT/);
  });
});

describe('mutual handshake', () => {
  const key = Buffer.alloc(32, 7);
  const other = Buffer.alloc(32, 8);
  it('accepts both proofs with the same key and refuses either side without it', () => {
    const cn = newNonce();
    const sn = newNonce();
    assert.ok(checkServerProof(key, 'kv/1', cn, sn, serverProof(key, 'kv/1', cn, sn)));
    assert.ok(checkClientProof(key, 'kv/1', cn, sn, clientProof(key, 'kv/1', cn, sn)));
    assert.ok(!checkServerProof(key, 'kv/1', cn, sn, serverProof(other, 'kv/1', cn, sn)));
    assert.ok(!checkClientProof(key, 'kv/1', cn, sn, clientProof(other, 'kv/1', cn, sn)));
    // a server proof is not a client proof, and a proof is bound to its context and nonces
    assert.ok(!checkClientProof(key, 'kv/1', cn, sn, serverProof(key, 'kv/1', cn, sn)));
    assert.ok(!checkClientProof(key, 'tcp/1', cn, sn, clientProof(key, 'kv/1', cn, sn)));
    assert.ok(!checkClientProof(key, 'kv/1', newNonce(), sn, clientProof(key, 'kv/1', cn, sn)));
  });
});

describe('signed requests', () => {
  const key = Buffer.alloc(32, 3);
  it('verifies once, refuses a replay, another body, path, key or an old timestamp', () => {
    const nonces = new NonceCache();
    const h = signRequest(key, 'POST', '/v1/kv/release', '{"a":1}');
    const r = verifyRequest(key, 'POST', '/v1/kv/release', h[AUTH_HEADER], '{"a":1}', nonces);
    assert.ok(r.ok);
    assert.ok(checkReplyProof(key, h, r.ok ? r.replyProof : ''));
    assert.ok(!checkReplyProof(Buffer.alloc(32, 4), h, r.ok ? r.replyProof : ''));
    assert.deepEqual(verifyRequest(key, 'POST', '/v1/kv/release', h[AUTH_HEADER], '{"a":1}', nonces), { ok: false, reason: 'replayed internal signature' });
    const h2 = signRequest(key, 'POST', '/v1/kv/release', '{"a":1}');
    assert.equal(verifyRequest(key, 'POST', '/v1/kv/release', h2[AUTH_HEADER], '{"a":2}', nonces).ok, false);
    assert.equal(verifyRequest(key, 'POST', '/debug/x', h2[AUTH_HEADER], '{"a":1}', nonces).ok, false);
    assert.equal(verifyRequest(Buffer.alloc(32, 9), 'POST', '/v1/kv/release', h2[AUTH_HEADER], '{"a":1}', nonces).ok, false);
    const old = signRequest(key, 'GET', '/debug/x', null, Date.now() - 120_000);
    assert.deepEqual(verifyRequest(key, 'GET', '/debug/x', old[AUTH_HEADER], null, nonces), { ok: false, reason: 'internal signature expired' });
    assert.deepEqual(verifyRequest(key, 'GET', '/debug/x', undefined, null, nonces), { ok: false, reason: 'missing internal signature' });
    assert.deepEqual(verifyRequest(key, 'GET', '/debug/x', 'Bearer x', null, nonces), { ok: false, reason: 'malformed internal signature' });
  });
  it('bounds the nonce cache', () => {
    const c = new NonceCache(2);
    assert.ok(c.add('a', 10, 0));
    assert.ok(c.add('b', 10, 0));
    assert.ok(!c.add('c', 10, 5)); // full of live nonces: refuse rather than grow
    assert.ok(c.add('c', 20, 11)); // a and b expired
    assert.equal(c.size, 1);
  });
});

describe('api keys', () => {
  it('admits only Bearer with a configured key; open when none', () => {
    assert.ok(new ApiKeyGuard([]).admits(undefined));
    const g = new ApiKeyGuard(['k1', 'k2']);
    assert.ok(g.admits('Bearer k1'));
    assert.ok(g.admits('bearer k2'));
    assert.ok(!g.admits('Bearer k3'));
    assert.ok(!g.admits('k1'));
    assert.ok(!g.admits(undefined));
  });
  it('takes the flag, else PDSERVE_API_KEY, else VLLM_API_KEY', () => {
    assert.deepEqual(resolveApiKeys(['a'], { PDSERVE_API_KEY: 'b' }), ['a']);
    assert.deepEqual(resolveApiKeys(undefined, { PDSERVE_API_KEY: 'b' }), ['b']);
    assert.deepEqual(resolveApiKeys(undefined, { VLLM_API_KEY: 'c' }), ['c']);
    assert.deepEqual(resolveApiKeys(undefined, {}), []);
  });
});
