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
