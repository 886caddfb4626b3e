import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { makePlan, deviceFor, type UpOptions } from './plan.js';
import { kvYaml } from './kv-yaml.js';
import { parseKvConfig } from '../kv/config.js';
import { tailFile } from './child.js';
import { commandFor } from './launcher.js';
import { splitEngineArgs } from '../cli/up.js';

const base: UpOptions = {
  model: 'm', prefill: 2, decode: 1, host: '0.0.0.0', port: 9000, device: 'cpu', prefillDevices: [], decodeDevices: [],
  kvPoolSize: '1G', kvPoolFile: '/dev/shm/x.pool', chunkSize: 128, loadFormat: 'dummy', runDir: '/r', engineArgs: ['--x', '1'], proxyArgs: ['--max-inflight', '8'],
  healthTimeoutMs: 1000, graceMs: 1000,
};
const yamlFor = (role: 'prefiller' | 'decoder', url: string) => kvYaml({ role, remoteUrl: url, chunkSize: 128 });

test('plan: kv-server, engines with roles and KV config, proxy with every upstream', () => {
  const plan = makePlan(base, { kv: 5000, prefill: [5001, 5002], decode: [5003] }, yamlFor);
  assert.deepEqual(plan.kvServer!.args, ['kv-server', '--host', '127.0.0.1', '--port', '5000', '--pool-size', '1G', '--pool-file', '/dev/shm/x.pool']);
  assert.equal(plan.kvServer!.ready, 'tcp');
  const [p0, , d0] = plan.engines;
  assert.deepEqual(p0!.args, [
    'serve', 'm', '--host', '127.0.0.1', '--port', '5001',
    '--kv-transfer-config', '{"kv_connector":"PdConnector","kv_role":"kv_producer"}',
    '--kv-config', '/r/prefiller.yaml', '--device', 'cpu', '--load-format', 'dummy', '--x', '1',
  ]);
  assert.equal(d0!.name, 'decoder-0');
  assert.ok(d0!.args.includes('{"kv_connector":"PdConnector","kv_role":"kv_consumer"}'));
  assert.deepEqual(plan.proxy.args, [
    'proxy', '--host', '0.0.0.0', '--port', '9000',
    '--prefiller', 'http://127.0.0.1:5001', '--prefiller', 'http://127.0.0.1:5002', '--decoder', 'http://127.0.0.1:5003',
    '--max-inflight', '8',
  ]);
  const y = YAML.parse(plan.files['/r/decoder.yaml']!);
  assert.deepEqual(y, {
    chunk_size: 128, local_cpu: true, remote_url: 'pdkv://127.0.0.1:5000', save_unfull_chunk: true,
    blocking_timeout_secs: 10, transfer_channel: 'pool', extra_config: { lookup_backoff_time: 0.1 },
  });
  assert.equal(YAML.parse(plan.files['/r/prefiller.yaml']!).local_cpu, false);
  const ipc = YAML.parse(kvYaml({ role: 'prefiller', remoteUrl: 'pdkv://127.0.0.1:5000', chunkSize: 128, transferChannel: 'cuda_ipc' }));
  assert.equal(ipc.transfer_channel, 'cuda_ipc', 'up --kv-transfer cuda_ipc reaches the engines');
  assert.equal(parseKvConfig(ipc).transfer_channel, 'cuda_ipc', 'and is a valid KV config');
});

test('plan: --prefill 0 is colocated (no kv-server, no KV flags); model omitted when null', () => {
  const plan = makePlan({ ...base, prefill: 0, decode: 2, model: null, loadFormat: null, engineArgs: [], proxyArgs: [] }, { kv: null, prefill: [], decode: [1, 2] }, yamlFor);
  assert.equal(plan.kvServer, null);
  assert.deepEqual(plan.files, {});
  assert.deepEqual(plan.engines[1]!.args, ['serve', '--host', '127.0.0.1', '--port', '2', '--device', 'cpu']);
  assert.deepEqual(plan.proxy.args.slice(5), ['--decoder', 'http://127.0.0.1:1', '--decoder', 'http://127.0.0.1:2']);
});

test('devices: per-role CUDA lists win, round robin', () => {
  const o = { ...base, device: 'cuda', prefillDevices: ['0', '1'], decodeDevices: ['3'] };
  assert.deepEqual([0, 1, 2].map((i) => deviceFor(o, 'prefiller', i)), ['cuda:0', 'cuda:1', 'cuda:0']);
  assert.equal(deviceFor(o, 'decoder', 4), 'cuda:3');
  assert.equal(deviceFor({ ...base, device: null }, 'decoder', 0), null);
});

test('argv split at "--", engine command override, log tail', () => {
  assert.deepEqual(splitEngineArgs(['up', 'm', '--', '--a', '1']), { own: ['up', 'm'], engine: ['--a', '1'] });
  assert.deepEqual(splitEngineArgs(['up']), { own: ['up'], engine: [] });
  assert.deepEqual(commandFor('decoder', { PDSERVE_UP_ENGINE_CMD: '["/bin/x","y"]' }), ['/bin/x', 'y']);
  assert.equal(commandFor('proxy', { PDSERVE_UP_ENGINE_CMD: '["/bin/x"]' })[0], process.execPath);
  assert.throws(() => commandFor('kv-server', { PDSERVE_UP_ENGINE_CMD: '"x"' }), /JSON array/);
  const dir = mkdtempSync(join(tmpdir(), 'pds-tail-'));
  try {
    const f = join(dir, 'a.log');
    writeFileSync(f, Array.from({ length: 100 }, (_, i) => `l${i}`).join('\n') + '\n');
    assert.equal(tailFile(f, 3), 'l97\nl98\nl99');
    assert.equal(tailFile(join(dir, 'missing'), 3), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
