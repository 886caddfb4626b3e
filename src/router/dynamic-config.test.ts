// parseDynamicConfig: production-stack's field names to flags, lists as strings or arrays, odd input refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDynamicConfig } from './dynamic-config.js';

test('parseDynamicConfig: JSON and YAML, comma lists or arrays, type errors refused, unknown fields ignored', () => {
  assert.deepEqual(parseDynamicConfig('{"service_discovery":"static","routing_logic":"roundrobin","static_backends":["http://a:1","http://b:2"],"k8s_port":8000,"callbacks":"x"}', 'json'), {
    serviceDiscovery: 'static', routingLogic: 'roundrobin', staticBackends: 'http://a:1,http://b:2', k8sPort: 8000,
  });
  assert.deepEqual(parseDynamicConfig('routing_logic: session\nsession_key: x-user\nstatic_models: m1,m2\n', 'yaml'), { routingLogic: 'session', sessionKey: 'x-user', staticModels: 'm1,m2' });
  for (const [text, fmt, re] of [
    ['{', 'json', /not valid JSON/], ['[1]', 'json', /an object/], ['null', 'json', /an object/], ['{"static_backends":"http://a:1"}', 'json', /needs routing_logic/],
    ['{"routing_logic":5}', 'json', /routing_logic must be a string/], ['{"routing_logic":"x","static_backends":[1]}', 'json', /array of strings/],
    ['{"routing_logic":"x","k8s_port":"80"}', 'json', /k8s_port/], ['- a', 'yaml', /an object/], ['a: [', 'yaml', /not valid YAML/],
  ] as const) assert.throws(() => parseDynamicConfig(text, fmt), re, text);
});
