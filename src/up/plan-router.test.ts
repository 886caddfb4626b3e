// `pdserve up --router LOGIC`: the front process is `pdserve router` over up's engines, labelled by role.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePlan, type UpOptions } from './plan.js';
import { kvYaml } from './kv-yaml.js';

const base: UpOptions = {
  model: 'm', prefill: 2, decode: 1, host: '127.0.0.1', port: 9000, device: 'cpu', prefillDevices: [], decodeDevices: [],
  kvPoolSize: '1G', kvPoolFile: '/dev/shm/x.pool', chunkSize: 128, loadFormat: 'dummy', runDir: '/r', engineArgs: [], proxyArgs: ['--max-inflight', '8'],
  healthTimeoutMs: 1000, graceMs: 1000,
};
const yamlFor = (role: 'prefiller' | 'decoder', url: string) => kvYaml({ role, remoteUrl: url, chunkSize: 128 });

test('up --router disaggregated_prefill: router with static backends labelled prefill/decode, extra flags appended', () => {
  const plan = makePlan({ ...base, router: 'disaggregated_prefill' }, { kv: 5000, prefill: [5001, 5002], decode: [5003] }, yamlFor);
  assert.deepEqual(plan.proxy.args, [
    'router', '--host', '127.0.0.1', '--port', '9000', '--service-discovery', 'static',
    '--static-backends', 'http://127.0.0.1:5001,http://127.0.0.1:5002,http://127.0.0.1:5003',
    '--static-model-labels', 'prefill,prefill,decode', '--routing-logic', 'disaggregated_prefill',
    '--prefill-model-labels', 'prefill', '--decode-model-labels', 'decode', '--max-inflight', '8',
  ]);
  const rr = makePlan({ ...base, router: 'roundrobin', prefill: 0, decode: 2 }, { kv: null, prefill: [], decode: [1, 2] }, yamlFor);
  assert.ok(!rr.proxy.args.includes('--prefill-model-labels'));
  assert.equal(rr.proxy.args[0], 'router');
  const proxy = makePlan(base, { kv: 5000, prefill: [5001, 5002], decode: [5003] }, yamlFor);
  assert.equal(proxy.proxy.args[0], 'proxy', 'no --router: the proxy as before');
});

test('up --router kvaware: each engine its own --kv-events-config endpoint, the router their endpoints in backend order', () => {
  const ports = { kv: null, prefill: [], decode: [5001, 5002], kvEvents: [[6001, 6002], [6003, 6004]] as [number, number][] };
  const plan = makePlan({ ...base, prefill: 0, decode: 2, router: 'kvaware', proxyArgs: [] }, ports, yamlFor);
  const cfg = (i: number) => JSON.parse(plan.engines[i]!.args[plan.engines[i]!.args.indexOf('--kv-events-config') + 1]!);
  assert.deepEqual(cfg(0), { enable_kv_cache_events: true, publisher: 'zmq', endpoint: 'tcp://127.0.0.1:6001' });
  assert.equal(cfg(1).endpoint, 'tcp://127.0.0.1:6003');
  const a = plan.proxy.args;
  assert.equal(a[a.indexOf('--kv-events-endpoints') + 1], 'tcp://127.0.0.1:6001,tcp://127.0.0.1:6003');
  // the user's own config after "--": its fields kept (topic, replay), one endpoint per engine, passed once
  const user = JSON.stringify({ enable_kv_cache_events: true, publisher: 'zmq', endpoint: 'tcp://*:5557', replay_endpoint: 'tcp://*:5558', topic: 'kv' });
  const p2 = makePlan({ ...base, prefill: 0, decode: 2, router: 'roundrobin', proxyArgs: ['--decode-policy', 'kvaware'], engineArgs: ['--kv-events-config', user, '--threads', '1'] }, ports, yamlFor);
  const args1 = p2.engines[1]!.args;
  assert.equal(args1.filter((x) => x === '--kv-events-config').length, 1);
  assert.deepEqual(JSON.parse(args1[args1.indexOf('--kv-events-config') + 1]!), { enable_kv_cache_events: true, publisher: 'zmq', endpoint: 'tcp://127.0.0.1:6003', replay_endpoint: 'tcp://127.0.0.1:6004', topic: 'kv' });
  assert.ok(args1.includes('--threads'));
  assert.deepEqual(p2.proxy.args.slice(p2.proxy.args.indexOf('--kv-events-endpoints')), ['--kv-events-endpoints', 'tcp://127.0.0.1:6001,tcp://127.0.0.1:6003', '--kv-events-topic', 'kv', '--decode-policy', 'kvaware']);
  // no kvaware pool and no user config: engines untouched
  const p3 = makePlan({ ...base, prefill: 0, decode: 2, router: 'roundrobin' }, { kv: null, prefill: [], decode: [1, 2] }, yamlFor);
  assert.ok(!p3.engines[0]!.args.includes('--kv-events-config'));
  assert.ok(!p3.proxy.args.includes('--kv-events-endpoints'));
});
