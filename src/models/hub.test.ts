// The download path against a fake hub on loopback (the subset of the hub API @huggingface/hub uses:
// model info, tree listing, paths-info, resolve with Range).
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createHash } from 'node:crypto';
import { resolveModel } from './resolve.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from('{"model_type":"llama","hidden_size":64}'),
  'generation_config.json': Buffer.from('{"eos_token_id":2}'),
  'tokenizer.json': Buffer.from('{"model":{}}'),
  'tokenizer_config.json': Buffer.from('{"eos_token":"</s>"}'),
  'model.safetensors': Buffer.alloc(4096, 7),
  'README.md': Buffer.from('# not needed'),
};
const tmp = mkdtempSync(join(tmpdir(), 'pds-hub-'));
const requests: Array<{ method: string; url: string; auth: string | undefined }> = [];

function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url!, 'http://x');
  requests.push({ method: req.method!, url: url.pathname, auth: req.headers.authorization });
  const json = (v: unknown) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(v)); };
  const entry = (path: string) => ({ type: 'file', path, size: FILES[path]!.length, oid: createHash('sha1').update(FILES[path]!).digest('hex'), lastCommit: { id: SHA, title: 't', date: new Date().toISOString() } });
  if (url.pathname === '/api/models/acme/net-model/revision/main') return json({ _id: 'x', id: 'acme/net-model', sha: SHA, lastModified: new Date().toISOString() });
  if (url.pathname === `/api/models/acme/net-model/tree/${SHA}`) return json([...Object.keys(FILES).map(entry), { type: 'directory', path: 'original', oid: 'd', size: 0 }]);
  if (url.pathname === `/api/models/acme/net-model/paths-info/${SHA}` && req.method === 'POST') {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => json((JSON.parse(body).paths as string[]).map(entry)));
    return;
  }
  const m = url.pathname.match(new RegExp(`^/acme/net-model/resolve/${SHA}/(.+)$`));
  if (m && FILES[m[1]!]) {
    const data = FILES[m[1]!]!;
    res.setHeader('etag', `"${createHash('sha1').update(data).digest('hex')}"`);
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${data.length}`, 'content-length': end - start + 1 });
      return res.end(data.subarray(start, end + 1));
    }
    res.writeHead(200, { 'content-length': data.length });
    return res.end(data);
  }
  res.writeHead(404, { 'content-type': 'application/json', 'x-error-code': 'RepoNotFound' });
  res.end(JSON.stringify({ error: 'Repository not found' }));
}

const server = createServer(handle);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
after(() => {
  server.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('hub download: only serving files, HF cache layout, token sent, then served from cache', async () => {
  const saved = { e: process.env.HF_ENDPOINT, t: process.env.HF_TOKEN };
  process.env.HF_ENDPOINT = endpoint;
  process.env.HF_TOKEN = 'hf_test_token';
  try {
    const home = join(tmp, 'home');
    const m = await resolveModel('acme/net-model', { loadFormat: 'auto', hfHome: home });
    const snap = join(home, 'hub', 'models--acme--net-model', 'snapshots', SHA);
    assert.equal(m.name, 'acme/net-model');
    assert.equal(m.dir, snap);
    assert.equal(m.weights, 'safetensors');
    assert.equal(m.config.hidden_size, 64);
    assert.equal(m.generationConfig.eos_token_id, 2);
    assert.equal(readFileSync(join(home, 'hub', 'models--acme--net-model', 'refs', 'main'), 'utf8'), SHA);
    assert.ok(lstatSync(join(snap, 'model.safetensors')).isSymbolicLink(), 'snapshot files link into blobs/');
    assert.deepEqual(readFileSync(join(snap, 'model.safetensors')), FILES['model.safetensors']);
    assert.equal(existsSync(join(snap, 'README.md')), false);
    assert.ok(!requests.some((r) => r.url.endsWith('/README.md')), 'README.md is not fetched');
    assert.ok(requests.every((r) => r.auth === 'Bearer hf_test_token'), 'HF_TOKEN is sent');

    const before = requests.length;
    const again = await resolveModel('acme/net-model', { loadFormat: 'auto', hfHome: home });
    assert.equal(again.dir, snap);
    assert.equal(requests.length, before, 'a complete cache makes no request');

    // dummy weights: only config/tokenizer files
    const home2 = join(tmp, 'home2');
    const d = await resolveModel('acme/net-model', { loadFormat: 'dummy', hfHome: home2 });
    assert.equal(d.weights, 'dummy');
    assert.equal(existsSync(join(d.dir, 'model.safetensors')), false);

    await assert.rejects(resolveModel('acme/missing', { loadFormat: 'auto', hfHome: home }), (e: Error) =>
      /^cannot download acme\/missing from http:\/\/127\.0\.0\.1:\d+: .*Repository not found.*; pass a local directory$/.test(e.message));
  } finally {
    for (const [k, v] of [['HF_ENDPOINT', saved.e], ['HF_TOKEN', saved.t]] as const) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
});
