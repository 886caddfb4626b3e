// Issue 12 acceptance 1: both example values files render with the real Helm, pass `helm lint --strict` and
// the Kubernetes API schemas (kubernetes-models), and match their goldens; and every pdserve command line in
// the rendered containers parses with pdserve's own CLI (a chart can't drift from the flags).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { helmLint, containerCommands, type K8sObject } from '../../src/deploy/render.js';
import { validateK8sObject } from '../../src/deploy/k8s-validate.js';
import { parsePdserveArgs } from '../../src/deploy/cli-parse.js';
import { parseKvConfig } from '../../src/kv/config.js';
import { byKind, exampleFiles, examplesDir, helmOrSkip, render } from '../helpers/helm.js';
import { checkGolden, goldenDiff, normalizeRender } from './golden.js';

const expectedCommand: Record<string, string[]> = { 'serving-engine': ['serve'], router: ['router', 'proxy'], 'kv-server': ['kv-server'] };

/** Parses every pdserve container of the render; returns "deployment/container: command" lines. */
async function parseAll(objs: K8sObject[]): Promise<string[]> {
  const out: string[] = [];
  for (const c of containerCommands(objs)) {
    if (c.init) {
      // the init container copies the Secret into a 0600 file (coreutils install, not pdserve)
      assert.deepEqual(c.argv.slice(0, 3), ['install', '-m', '0600'], `${c.deployment}/${c.container}`);
      continue;
    }
    assert.equal(c.argv[0], 'pdserve', `${c.deployment}/${c.container} runs pdserve`);
    const p = await parsePdserveArgs(c.argv.slice(1));
    assert.ok(expectedCommand[c.component]?.includes(p.command), `${c.deployment}: component ${c.component} runs pdserve ${p.command}`);
    out.push(`${c.deployment}/${c.container}: ${p.command}`);
  }
  return out;
}

for (const file of exampleFiles) {
  test(`${file}: helm template + lint --strict + Kubernetes schemas + golden`, async (t) => {
    const helm = helmOrSkip(t);
    if (!helm) return;
    const valuesFiles = [join(examplesDir, file)];
    const lint = helmLint(helm, { valuesFiles });
    assert.ok(lint.ok, `helm lint --strict ${file}:\n${lint.stdout}\n${lint.stderr}`);
    const { text, objs } = render(helm, { valuesFiles });
    for (const o of objs) validateK8sObject(o);
    const kinds = new Set(objs.map((o) => o.kind));
    for (const k of ['Deployment', 'Service', 'ConfigMap', 'Secret', 'ServiceAccount', 'Role', 'RoleBinding']) assert.ok(kinds.has(k), `${file} renders a ${k}`);
    const mismatch = checkGolden(file, normalizeRender(text));
    if (mismatch) assert.fail(mismatch);
  });

  test(`${file}: every rendered pdserve command parses with pdserve's CLI; kv-config files parse with pdserve's loader`, async (t) => {
    const helm = helmOrSkip(t);
    if (!helm) return;
    const { objs } = render(helm, { valuesFiles: [join(examplesDir, file)] });
    const parsed = await parseAll(objs);
    assert.deepEqual(parsed.map((l) => l.split(': ')[1]).sort(), ['kv-server', 'router', 'serve', 'serve']);
    const maps = byKind(objs, 'ConfigMap').filter((o) => o.metadata.name.endsWith('-kv-config'));
    assert.equal(maps.length, 2);
    for (const m of maps) {
      const kv = parseKvConfig(YAML.parse((m.data as Record<string, string>)['kv-config.yaml']!));
      assert.deepEqual(kv.remote, { host: 'pd-kv-server-service', port: 65432 }, m.metadata.name);
    }
  });
}

test('golden diff names the file and the first differing line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pds-golden-'));
  try {
    const p = join(dir, 'x.yaml');
    writeFileSync(p, 'a: 1\nb: 2\nc: 3\n');
    assert.equal(goldenDiff(p, 'a: 1\nb: 2\nc: 3\n'), null);
    const msg = goldenDiff(p, 'a: 1\nb: 20\nc: 3\n')!;
    assert.match(msg, /x\.yaml:2 differs/);
    assert.match(msg, /golden: "b: 2"/);
    assert.match(msg, /render: "b: 20"/);
    assert.match(goldenDiff(join(dir, 'none.yaml'), '')!, /none\.yaml is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the proxy kind renders a `pdserve proxy` over the engine Services that parses with the CLI', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const { objs } = render(helm, { valuesFiles: [join(examplesDir, 'values-1p1d.yaml')], set: ['routerSpec.kind=proxy'] });
  const router = containerCommands(objs).find((c) => c.component === 'router' && !c.init)!;
  const p = await parsePdserveArgs(router.argv.slice(1));
  assert.equal(p.command, 'proxy');
  assert.deepEqual(p.opts.prefiller, ['http://pd-llama-prefill-engine-service:80']);
  assert.deepEqual(p.opts.decoder, ['http://pd-llama-decode-engine-service:80']);
  assert.equal(p.opts.kvServer, 'pd-kv-server-service:65432');
});

// Every engineConfig key of values.schema.json set at once (booleans both ways): each must render to a flag
// `pdserve serve` knows. A schema key without a sample here fails the test, so new keys get checked too.
const engineSamples: Record<string, unknown[]> = {
  device: ['cpu'], loadFormat: ['dummy'], dtype: ['float32'], kvCacheDtype: ['auto'], threads: [1], blockSize: [16],
  maxNumBatchedTokens: [512], maxNumSeqs: [4], maxModelLen: [256], enablePrefixCaching: [true, false], kvCacheMemory: ['64M'],
  gpuMemoryUtilization: [0.5], seed: [7], servedModelName: [['a', 'b']], generationConfig: ['vllm'], tokenizerPoolSize: [0],
  accessLog: [true, false], extraArgs: [['--max-num-seqs', '3']],
};

test('every engineConfig key of the schema renders to a `pdserve serve` flag (booleans both ways)', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const schema = (await import('node:fs')).readFileSync(join(examplesDir, '..', '..', 'deploy', 'helm', 'pdserve', 'values.schema.json'), 'utf8');
  const keys = Object.keys(JSON.parse(schema).definitions.engineConfig.properties as object).sort();
  assert.deepEqual(Object.keys(engineSamples).sort(), keys, 'engineSamples covers every engineConfig key of values.schema.json');
  for (const variant of [0, 1]) {
    const engineConfig = Object.fromEntries(Object.entries(engineSamples).map(([k, v]) => [k, v[Math.min(variant, v.length - 1)]]));
    const dir = mkdtempSync(join(tmpdir(), 'pds-values-'));
    try {
      const f = join(dir, 'values.yaml');
      writeFileSync(f, YAML.stringify({ servingEngineSpec: { modelSpec: [{ name: 'all-flags', modelURL: 'stories260k', engineConfig, kvConfig: { enabled: true, kvRole: 'kv_both' } }] } }));
      const { objs } = render(helm, { valuesFiles: [f] });
      const engine = containerCommands(objs).find((c) => c.component === 'serving-engine' && !c.init)!;
      const p = await parsePdserveArgs(engine.argv.slice(1));
      assert.equal(p.command, 'serve');
      assert.equal(p.opts.enablePrefixCaching, variant === 0, `variant ${variant}: ${engine.argv.join(' ')}`);
      assert.equal(p.opts.accessLog, variant === 0);
      assert.equal(p.opts.maxNumSeqs, 3, 'extraArgs come last and win');
      assert.equal(p.opts.loadFormat, 'dummy');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

// The negative cases: the same parse rejects a flag pdserve does not have, wherever the chart lets one in.
for (const [where, set, flag] of [
  ['engine', 'servingEngineSpec.modelSpec[0].engineConfig.extraArgs={--no-such-engine-flag}', '--no-such-engine-flag'],
  ['router', 'routerSpec.extraArgs={--no-such-router-flag}', '--no-such-router-flag'],
  ['kv-server', 'kvServerSpec.extraArgs={--no-such-kv-flag}', '--no-such-kv-flag'],
] as const) {
  test(`an unknown ${where} flag in the rendered chart fails the CLI parse, naming it`, async (t) => {
    const helm = helmOrSkip(t);
    if (!helm) return;
    const { objs } = render(helm, { valuesFiles: [join(examplesDir, 'values-1p1d.yaml')], set: [set] });
    await assert.rejects(parseAll(objs), (e: Error) => e.message.includes(`unknown option '${flag}'`));
  });
}

test('a bad flag value in the rendered chart fails the CLI parse', async (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const { objs } = render(helm, { valuesFiles: [join(examplesDir, 'values-1p1d.yaml')], set: ['servingEngineSpec.modelSpec[0].engineConfig.extraArgs={--max-num-seqs,many}'] });
  await assert.rejects(parseAll(objs), /max-num-seqs/);
});
