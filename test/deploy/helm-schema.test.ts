// Issue 12 acceptance 3: a wrong value fails `helm template` and `helm lint` through values.schema.json with a
// message naming the value's path; and the schema's enums agree with what pdserve accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartDir, helmLint, helmTemplate } from '../../src/deploy/render.js';
import { routingLogics } from '../../src/router/config.js';
import { exampleFiles, examplesDir, helmOrSkip } from '../helpers/helm.js';

const wrong: Array<[string, RegExp]> = [
  ['servingEngineSpec.modelSpec[0].replicaCount=-1', /\/servingEngineSpec\/modelSpec\/0\/replicaCount': minimum: got -1/],
  ['servingEngineSpec.modelSpec[1].kvConfig.kvRole=kv_sideways', /\/servingEngineSpec\/modelSpec\/1\/kvConfig\/kvRole': value must be one of 'kv_producer', 'kv_consumer', 'kv_both'/],
  ['routerSpec.replicaCount=-2', /\/routerSpec\/replicaCount': minimum: got -2/],
  ['routerSpec.kind=balancer', /\/routerSpec\/kind': value must be one of 'router', 'proxy'/],
  ['routerSpec.routingLogic=random', /\/routerSpec\/routingLogic': value must be one of/],
  ['servingEngineSpec.modelSpec[0].engineConfig.maxModelLenn=5', /\/servingEngineSpec\/modelSpec\/0\/engineConfig': additional properties 'maxModelLenn' not allowed/],
  ['kvServerSpec.port=70000', /\/kvServerSpec\/port': maximum/],
  ['servingEngineSpec.modelSpec[0].name=Bad_Name', /\/servingEngineSpec\/modelSpec\/0\/name': 'Bad_Name' does not match pattern/],
  ['internalSecret.value=short', /\/internalSecret\/value': 'short' does not match pattern/],
];

for (const [set, message] of wrong) {
  test(`schema rejects ${set}`, (t) => {
    const helm = helmOrSkip(t);
    if (!helm) return;
    const o = { valuesFiles: [join(examplesDir, 'values-1p1d.yaml')], set: [set] };
    const tpl = helmTemplate(helm, o);
    assert.equal(tpl.ok, false, `helm template accepted ${set}`);
    assert.match(tpl.stderr, /values don't meet the specifications of the schema/);
    assert.match(tpl.stderr, message);
    const lint = helmLint(helm, o);
    assert.equal(lint.ok, false, `helm lint accepted ${set}`);
    assert.match(lint.stdout + lint.stderr, message);
  });
}

test('a missing kvRole with kvConfig.enabled fails the schema', (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  const r = helmTemplate(helm, { set: ['servingEngineSpec.modelSpec[0].name=x', 'servingEngineSpec.modelSpec[0].modelURL=stories260k', 'servingEngineSpec.modelSpec[0].kvConfig.enabled=true'] });
  assert.equal(r.ok, false);
  assert.match(r.stderr, /\/servingEngineSpec\/modelSpec\/0\/kvConfig': missing property 'kvRole'/);
});

test('the example values files pass the schema unchanged (the wrong values above are the only difference)', (t) => {
  const helm = helmOrSkip(t);
  if (!helm) return;
  for (const f of exampleFiles) assert.ok(helmTemplate(helm, { valuesFiles: [join(examplesDir, f)] }).ok, f);
});

test("the schema's routingLogic enum is the router's --routing-logic list", () => {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8'));
  assert.deepEqual([...schema.properties.routerSpec.properties.routingLogic.enum].sort(), [...routingLogics].sort());
});
