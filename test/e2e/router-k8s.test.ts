// Issue 11 acceptance 5: `pdserve router --service-discovery k8s` against a loopback fake of the
// Kubernetes API (test/helpers/fake-kube-api.ts: the pods list/watch subset the official client's
// informer uses; NOT a real cluster), with tiny stub engines on 127.0.0.2 and 127.0.0.3 (one
// --k8s-port, as pods share a port). Pods added, made ready, removed -> the router's engines and the
// engine answering requests follow; the label selector reaches the API server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { postJson, spawnPdserve, type Spawned } from '../helpers/spawn-server.js';
import { startFakeKube } from '../helpers/fake-kube-api.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stand-in engine that answers every completion with its own name. */
function stubEngine(name: string, host: string, port: number): Promise<Server> {
  const s = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/health') return void res.writeHead(200).end();
      if (path === '/metrics') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('vllm:num_requests_running 0\nvllm:num_requests_waiting 0\n');
      if (path === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'x', object: 'text_completion', model: 'm', choices: [{ index: 0, text: name, finish_reason: 'length' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    });
  });
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
}

async function twoStubs(): Promise<{ port: number; servers: Server[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const a = await stubEngine('engine-a', '127.0.0.2', 0);
    const port = (a.address() as AddressInfo).port;
    try {
      return { port, servers: [a, await stubEngine('engine-b', '127.0.0.3', port)] };
    } catch {
      a.close(); // that port is taken on 127.0.0.3: another one
    }
  }
  throw new Error('no port free on both 127.0.0.2 and 127.0.0.3');
}

test('k8s discovery: pods added, made ready, removed -> routing follows', async () => {
  const kube = await startFakeKube('serving');
  const { port, servers } = await twoStubs();
  let router: Spawned | null = null;
  try {
    kube.upsert({ name: 'eng-a', labels: { app: 'vllm', model: 'llama' }, ip: '127.0.0.2', ready: false });
    kube.upsert({ name: 'other', labels: { app: 'web' }, ip: '127.0.0.9', ready: true }); // not selected
    router = await spawnPdserve(['router', '--service-discovery', 'k8s', '--k8s-namespace', 'serving', '--k8s-label-selector', 'app=vllm',
      '--k8s-port', String(port), '--routing-logic', 'roundrobin', '--health-check-interval', '0.5', '--engine-stats-interval', '1'],
    { env: { KUBECONFIG: kube.kubeconfigPath }, healthPath: '/version' });
    const engines = async () => ((await (await fetch(`${router!.url}/engines`)).json()) as { url: string; healthy: boolean; model_label: string | null }[]);
    const until = async (what: string, ok: (e: Awaited<ReturnType<typeof engines>>) => boolean) => {
      for (let i = 0; i < 100; i++) {
        const e = await engines();
        if (ok(e)) return e;
        await sleep(100);
      }
      assert.fail(`${what}: engines ${JSON.stringify(await engines())}\nrouter: ${router!.logs().slice(-3000)}\napi: ${kube.requests.join(" | ")}`);
    };
    const answers = async (n: number) => {
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const r = await postJson(`${router!.url}/v1/completions`, { model: 'm', prompt: 'hi', max_tokens: 1 });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        seen.add(r.json.choices[0].text);
      }
      return [...seen].sort();
    };
    await until('a pod that is not ready is no engine', (e) => e.length === 0);
    const none = await postJson(`${router.url}/v1/completions`, { model: 'm', prompt: 'hi', max_tokens: 1 });
    assert.ok(none.status >= 500, `no engine: ${none.status}`);

    kube.upsert({ name: 'eng-a', labels: { app: 'vllm', model: 'llama' }, ip: '127.0.0.2', ready: true });
    const e1 = await until('made ready', (e) => e.length === 1);
    assert.equal(e1[0]!.url, `http://127.0.0.2:${port}`);
    assert.equal(e1[0]!.model_label, 'llama', 'the model label comes from the pod label');
    assert.deepEqual(await answers(4), ['engine-a']);

    kube.upsert({ name: 'eng-b', labels: { app: 'vllm', model: 'llama' }, ip: '127.0.0.3', ready: true });
    await until('added', (e) => e.length === 2);
    assert.deepEqual(await answers(6), ['engine-a', 'engine-b'], 'round robin over both pods');

    kube.remove('eng-a');
    await until('removed', (e) => e.length === 1 && e[0]!.url === `http://127.0.0.3:${port}`);
    assert.deepEqual(await answers(4), ['engine-b']);

    assert.ok(kube.requests.some((q) => q.includes('labelSelector=app%3Dvllm') && q.includes('watch=true')), kube.requests.join('\n'));
  } finally {
    await router?.stop();
    for (const s of servers) await new Promise((r) => s.close(r));
    await kube.close();
  }
});
