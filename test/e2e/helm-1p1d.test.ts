// Issue 12 acceptance 2: the container commands of the rendered examples/k8s/values-1p1d.yaml (kv-server,
// prefiller, decoder, and the router in both kinds: `pdserve router` and `pdserve proxy`) run as local
// processes on loopback (test/helpers/chart-local.ts plays the cluster), and requests through the router and
// the proxy give a single engine's greedy tokens (default model) or the reference tokens (every fixture case),
// with the decoder loading the prefilled KV from the kv-server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { comparableSteps, fixtureModels, fixturesOrSkip, readReference } from '../helpers/fixtures.js';
import { examplesDir, helmOrSkip, render } from '../helpers/helm.js';
import { planLocal, startLocal, stopLocal, type LocalPlan, type Running } from '../helpers/chart-local.js';
import { postJson, spawnPdserve } from '../helpers/spawn-server.js';

const PROMPT = 'Once upon a time, there was a little girl who loved to play outside';

interface Cluster {
  router: string; // base URL of `pdserve router`
  proxy: string; // base URL of `pdserve proxy`
  plans: LocalPlan[];
  running: Running[];
  logs(): string;
}

/** Renders 1p1d twice (routerSpec.kind router and proxy), runs kv-server + engines once and both front ends. */
async function startCluster(helm: string, root: string, set: string[]): Promise<Cluster> {
  const valuesFiles = [join(examplesDir, 'values-1p1d.yaml')];
  // a small pool for a shared test machine (the example asks for 1G); still the chart's kv-server command
  const common = ['kvServerSpec.poolSize=64M', ...set];
  const asRouter = render(helm, { valuesFiles, set: common });
  // the proxy render shares the router render's internal secret (each render generates one otherwise)
  const secret = asRouter.objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'pd-secrets')!;
  const hex = Buffer.from((secret.data as Record<string, string>)['internal-secret']!, 'base64').toString('utf8');
  const asProxy = render(helm, { valuesFiles, set: [...common, 'routerSpec.kind=proxy', `internalSecret.value=${hex}`] });
  const engineObjs = (objs: typeof asRouter.objs) => JSON.stringify(objs.filter((o) => o.kind === 'Deployment' && o.metadata.name !== 'pd-deployment-router').map((o) => o.spec));
  assert.equal(engineObjs(asRouter.objs), engineObjs(asProxy.objs), 'the router kind does not change the engines or the kv-server');
  const pr = await planLocal(asRouter.objs, join(root, 'router'));
  // the proxy runs in front of the router plan's engines and kv-server: their Services keep their ports
  const shared = new Map([...pr.services].filter(([svc]) => svc !== 'pd-router-service'));
  const pp = await planLocal(asProxy.objs, join(root, 'proxy'), shared);
  const proxySpec = pp.processes.find((p) => p.component === 'router')!;
  const running: Running[] = [];
  const cluster: Cluster = {
    router: `http://127.0.0.1:${pr.services.get('pd-router-service')}`,
    proxy: `http://127.0.0.1:${proxySpec.port}`,
    plans: [pr, pp],
    running,
    logs: () => running.map((r) => `--- ${r.spec.deployment} (${r.spec.argv.slice(2).join(' ')})\n${r.logs().slice(-2000)}`).join('\n'),
  };
  try {
    const order = ['kv-server', 'serving-engine'];
    const backends = pr.processes.filter((p) => p.component !== 'router').sort((a, b) => order.indexOf(a.component) - order.indexOf(b.component));
    for (const p of backends) running.push(await startLocal(p));
    running.push(await startLocal(pr.processes.find((p) => p.component === 'router')!));
    running.push(await startLocal(proxySpec));
  } catch (e) {
    await stopLocal(running);
    throw e;
  }
  return cluster;
}

function assertRendered(c: Cluster): void {
  const [pr] = c.plans;
  const cmd = (comp: string, i = 0) => pr!.processes.filter((p) => p.component === comp)[i]!.argv.slice(2);
  assert.equal(cmd('kv-server')[0], 'kv-server');
  assert.equal(cmd('serving-engine')[0], 'serve');
  assert.equal(cmd('router')[0], 'router');
  assert.ok(cmd('router').includes('disaggregated_prefill'));
}

test('1p1d chart commands on loopback (default model): router and proxy give a single engine\'s greedy tokens', { timeout: 180_000 }, async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const root = mkdtempSync(join(tmpdir(), 'pds-helm-1p1d-'));
  let c: Cluster | null = null;
  const single = await spawnPdserve(['serve', 'stories260k', '--max-model-len', '512']);
  try {
    c = await startCluster(helm, root, []);
    assertRendered(c);
    const body = { prompt: PROMPT, max_tokens: 12, temperature: 0, ignore_eos: true, return_token_ids: true };
    const want = await postJson(`${single.url}/v1/completions`, body);
    assert.equal(want.status, 200, JSON.stringify(want.json));
    for (const [name, url] of [['router', c.router], ['proxy', c.proxy]] as const) {
      const r = await postJson(`${url}/v1/completions`, body);
      assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.json)}\n${c.logs()}`);
      assert.deepEqual(r.json.choices[0].token_ids, want.json.choices[0].token_ids, name);
      const n = r.json.usage.prompt_tokens;
      const cached = r.json.usage.prompt_tokens_details?.cached_tokens ?? 0;
      assert.ok(cached >= n - 1, `${name}: decoder cached_tokens ${cached} < ${n - 1} (KV did not come through the kv-server)`);
    }
  } finally {
    await single.stop();
    if (c) await stopLocal(c.running);
    rmSync(root, { recursive: true, force: true });
  }
});

for (const model of fixtureModels) {
  test(`1p1d chart commands on loopback, ${model}: every reference case through the router and the proxy`, { timeout: 300_000 }, async (t) => {
    const helm = helmOrSkip(t);
    if (!helm) return;
    const fx = fixturesOrSkip(t);
    if (!fx) return;
    const ref = readReference(fx, model);
    const dir = join(fx, 'models', model);
    const root = mkdtempSync(join(tmpdir(), 'pds-helm-1p1d-'));
    let c: Cluster | null = null;
    try {
      // the example's maxModelLen (512) is below the longest fixture case: raise it to what the cases need
      const len = Math.max(...ref.cases.map((x) => x.prompt.length + x.greedy.length));
      const set = [0, 1].flatMap((i) => [`servingEngineSpec.modelSpec[${i}].modelURL=${dir}`, `servingEngineSpec.modelSpec[${i}].engineConfig.maxModelLen=${len}`]);
      c = await startCluster(helm, root, set);
      for (const [name, url] of [['router', c.router], ['proxy', c.proxy]] as const) {
        for (const [i, cs] of ref.cases.entries()) {
          const r = await postJson(`${url}/v1/completions`, { prompt: cs.prompt, max_tokens: cs.greedy.length, temperature: 0, ignore_eos: true, return_token_ids: true });
          assert.equal(r.status, 200, `${name} ${model} case ${i}: ${JSON.stringify(r.json)}`);
          const k = comparableSteps(cs);
          assert.deepEqual(r.json.choices[0].token_ids.slice(0, k), cs.greedy.slice(0, k), `${name} ${model} case ${i}`);
          const cached = r.json.usage.prompt_tokens_details?.cached_tokens ?? 0;
          assert.ok(cached >= cs.prompt.length - 1, `${name} ${model} case ${i}: decoder cached_tokens ${cached} < ${cs.prompt.length - 1}`);
        }
      }
    } finally {
      if (c) await stopLocal(c.running);
      rmSync(root, { recursive: true, force: true });
    }
  });
}
