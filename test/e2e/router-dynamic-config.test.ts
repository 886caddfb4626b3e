// Issue 11: `pdserve router --dynamic-config-json|--dynamic-config-yaml` (production-stack's dynamic
// config) hot reload, on a real router process over scripted engines on loopback: the file's backends
// replace the command line's at start; a changed file moves routing to the new backends (and a new
// routing logic); a broken or invalid file is logged and the running config kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnPdserve, postJson, type Spawned } from '../helpers/spawn-server.js';
import { startStub, sendJson, completion, sleep, type Stub } from '../helpers/stub-upstream.js';

const engine = (name: string) => startStub((req, res) => sendJson(res, 200, completion(name, req.body?.max_tokens === 1 ? { kv_transfer_params: { from: name } } : {})));
const gen = (s: Stub) => s.requests.filter((q) => q.path === '/v1/completions');

/** Writes atomically (a reader never sees half a file). */
function put(path: string, text: string): void {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const engineUrls = async (r: Spawned) => ((await (await fetch(`${r.url}/engines`)).json()) as { url: string; role: string }[]).map((e) => `${e.role} ${e.url}`);

test('dynamic config JSON: backends follow the file at run time; a bad file keeps the running config', async () => {
  const stubs = await Promise.all(['a', 'b', 'c', 'cli'].map(engine));
  const [a, b, c, cli] = stubs as [Stub, Stub, Stub, Stub];
  const dir = mkdtempSync(join(tmpdir(), 'pds-dyn-'));
  const file = join(dir, 'router.json');
  put(file, JSON.stringify({ service_discovery: 'static', routing_logic: 'roundrobin', static_backends: a.url, static_models: 'm1' }));
  let r: Spawned | null = null;
  try {
    r = await spawnPdserve(['router', '--static-backends', cli.url, '--dynamic-config-json', file, '--dynamic-config-interval', '0.1']);
    assert.deepEqual(await engineUrls(r), [`decode ${a.url}`], 'the file\'s backends replace the command line\'s');
    for (let i = 0; i < 4; i++) assert.equal((await postJson(`${r.url}/v1/completions`, { model: 'm1', prompt: 'x', max_tokens: 2 })).status, 200);
    assert.equal(gen(a).length, 4);
    assert.equal(gen(cli).length, 0);

    put(file, JSON.stringify({ service_discovery: 'static', routing_logic: 'roundrobin', static_backends: [b.url, c.url], static_models: 'm2,m2' }));
    await waitFor('the new backends', async () => (await engineUrls(r!)).join() === [`decode ${b.url}`, `decode ${c.url}`].join());
    for (let i = 0; i < 6; i++) assert.equal((await postJson(`${r.url}/v1/completions`, { model: 'm2', prompt: 'x', max_tokens: 2 })).status, 200);
    assert.equal(gen(a).length, 4, 'the removed backend gets nothing more');
    assert.deepEqual([gen(b).length, gen(c).length], [3, 3], 'round robin over the new ones');
    assert.equal((await postJson(`${r.url}/v1/completions`, { model: 'm1', prompt: 'x', max_tokens: 2 })).status, 404, 'models follow the file too');

    put(file, '{"routing_logic": "roundrobin", "static_backends": ');
    await waitFor('the parse error logged', () => /dynamic config .* not applied, the running config is kept: not valid JSON/.test(r!.logs()));
    put(file, JSON.stringify({ service_discovery: 'static', routing_logic: 'no-such-logic', static_backends: a.url }));
    await waitFor('the invalid logic logged', () => /not applied, the running config is kept: --routing-logic must be one of/.test(r!.logs()));
    put(file, JSON.stringify({ service_discovery: 'static', routing_logic: 'disaggregated_prefill', static_backends: a.url, static_model_labels: 'p', prefill_model_labels: 'p', decode_model_labels: 'd' }));
    await waitFor('the missing decode pool logged', () => /not applied, the running config is kept: no decode backend/.test(r!.logs()));
    assert.deepEqual(await engineUrls(r), [`decode ${b.url}`, `decode ${c.url}`], 'still the last good config');
    assert.equal((await postJson(`${r.url}/v1/completions`, { model: 'm2', prompt: 'x', max_tokens: 2 })).status, 200);
    assert.equal(gen(a).length, 4);
  } finally {
    await r?.stop();
    await Promise.all(stubs.map((s) => s.close()));
  }
});

test('dynamic config YAML: switching roundrobin -> disaggregated_prefill with labels at run time', async () => {
  const stubs = await Promise.all(['p', 'd'].map(engine));
  const [p, d] = stubs as [Stub, Stub];
  const dir = mkdtempSync(join(tmpdir(), 'pds-dyn-'));
  const file = join(dir, 'router.yaml');
  put(file, `service_discovery: static\nrouting_logic: roundrobin\nstatic_backends: ${d.url}\n`);
  let r: Spawned | null = null;
  try {
    r = await spawnPdserve(['router', '--dynamic-config-yaml', file, '--dynamic-config-interval', '0.1']);
    assert.equal((await postJson(`${r.url}/v1/completions`, { prompt: 'x', max_tokens: 2 })).status, 200);
    assert.equal(gen(p).length, 0);
    put(file, [
      'service_discovery: static', 'routing_logic: disaggregated_prefill', 'static_backends:', `  - ${p.url}`, `  - ${d.url}`,
      'static_model_labels: [llama-prefill, llama-decode]', 'prefill_model_labels: llama-prefill', 'decode_model_labels: llama-decode', '',
    ].join('\n'));
    await waitFor('the prefill pool', async () => (await engineUrls(r!)).join() === [`prefill ${p.url}`, `decode ${d.url}`].join());
    assert.equal((await postJson(`${r.url}/v1/completions`, { prompt: 'x', max_tokens: 5 })).status, 200);
    assert.equal(gen(p).length, 1, 'prefilled');
    assert.equal(gen(d).at(-1)!.body.kv_transfer_params?.from, 'p', 'the decoder got the prefiller\'s params');
    assert.match(r.logs(), /router reconfigured \(--routing-logic disaggregated_prefill/);
  } finally {
    await r?.stop();
    await Promise.all(stubs.map((s) => s.close()));
  }
});
