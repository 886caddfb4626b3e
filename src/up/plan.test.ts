import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { makePlan, deviceFor, type UpOptions } from './plan.js';
import { kvYaml } from './kv-yaml.js';
import { parseKvConfig } from '../kv/config.js';
import { childEnv, tailFile } from './child.js';
import { decideRestart } from './restart-policy.js';
import { defaultPoolFile, pidAlive, removeStalePools } from './stale-pool.js';
import { openPrivateLog, prepareRunDir, readOwner, writeOwner, writePrivateFile } from './run-dir.js';
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
    '--kv-server', '127.0.0.1:5000', '--max-inflight', '8',
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

test('plan: every child gets the internal secret path, only the proxy the users\' key; env null = removed', () => {
  const plan = makePlan({ ...base, internalSecretFile: '/r/internal-secret', apiKey: 'k1' }, { kv: 5000, prefill: [5001], decode: [5003] }, yamlFor);
  const kids = [plan.kvServer!, ...plan.engines, plan.proxy];
  for (const c of kids) assert.equal(c.env.PDSERVE_INTERNAL_SECRET_FILE, '/r/internal-secret', c.name);
  for (const c of kids.filter((c) => c.kind !== 'proxy')) assert.deepEqual([c.env.PDSERVE_API_KEY, c.env.VLLM_API_KEY], [null, null], c.name);
  assert.deepEqual([plan.proxy.env.PDSERVE_API_KEY, plan.proxy.env.VLLM_API_KEY], ['k1', null]);
  assert.equal(kids.some((c) => c.args.includes('k1')), false, 'the key is on no command line');
  const env = childEnv({ A: 'x', B: null }, { B: 'gone', C: 'kept' });
  assert.deepEqual(env, { A: 'x', C: 'kept', PDSERVE_LIFELINE_FD: '3' });
});

test('restart policy: doubling delays with jitter under a cap; given up past maxRestarts within the window', () => {
  const p = { baseMs: 100, capMs: 1000, maxRestarts: 5, windowMs: 60_000 };
  const h: number[] = [];
  const delays = [0, 1, 2, 3, 4].map((i) => decideRestart(p, h, i * 10, () => 0.999999));
  assert.deepEqual(delays.map((d) => (d.kind === 'restart' ? [d.attempt, d.delayMs] : d.kind)), [[1, 100], [2, 200], [3, 400], [4, 800], [5, 1000]]);
  assert.deepEqual(decideRestart(p, h, 60, () => 0), { kind: 'give_up', restarts: 5 });
  const low = decideRestart(p, [], 0, () => 0);
  assert.equal(low.kind === 'restart' && low.delayMs, 50, 'jitter takes up to half off');
  // deaths older than the window no longer count
  const old = [0, 1, 2, 3, 4];
  assert.equal(decideRestart(p, old, 70_000).kind, 'restart');
  assert.deepEqual(old, [70_000]);
});

test('stale pools: the recorded one and default-named ones of dead owners are removed, never a live owner\'s', async () => {
  const { spawnSync } = await import('node:child_process');
  const { existsSync, symlinkSync } = await import('node:fs');
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const dir = mkdtempSync(join(tmpdir(), 'pds-stale-'));
  try {
    const named = join(dir, 'mine.pool');
    writeFileSync(named, 'x');
    writeFileSync(`${named}.1`, 'x');
    writeOwner(dir, { pid: dead, poolFile: named });
    const deadDefault = defaultPoolFile(dir, dead);
    const liveDefault = defaultPoolFile(dir, process.pid);
    const other = join(dir, `pdserve-up-${dead}-zz.pool`); // not our name pattern
    for (const f of [deadDefault, `${deadDefault}.2`, liveDefault, other]) writeFileSync(f, 'x');
    symlinkSync('/etc/passwd', join(dir, `pdserve-up-${dead}-aa.pool`));
    const removed = removeStalePools(dir, dir, 1).sort();
    assert.deepEqual(removed, [named, `${named}.1`, deadDefault, `${deadDefault}.2`].sort());
    assert.ok(existsSync(liveDefault) && existsSync(other));
    assert.ok(existsSync('/etc/passwd'));
    assert.match(deadDefault, /pdserve-up-\d+-[0-9a-f]{16}\.pool$/);
    writeOwner(dir, { pid: process.pid, poolFile: liveDefault });
    assert.deepEqual(removeStalePools(dir, null, 1), [], 'a live owner keeps its pool');
    assert.equal(readOwner(dir)!.pid, process.pid);
    assert.equal(pidAlive(dead), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run directory: created 0700 (an existing one chmod\'ed), files 0600, symlinks refused', async () => {
  const { statSync, mkdirSync, symlinkSync, chmodSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'pds-run-'));
  try {
    const run = join(dir, 'a', 'b');
    prepareRunDir(run);
    assert.equal(statSync(run).mode & 0o777, 0o700);
    const old = join(dir, 'old');
    mkdirSync(old, { mode: 0o755 });
    chmodSync(old, 0o755);
    prepareRunDir(old);
    assert.equal(statSync(old).mode & 0o777, 0o700);
    writeFileSync(join(run, 'x.log'), 'old', { mode: 0o644 });
    const { closeSync } = await import('node:fs');
    closeSync(openPrivateLog(join(run, 'x.log')));
    assert.equal(statSync(join(run, 'x.log')).mode & 0o777, 0o600);
    writePrivateFile(join(run, 'c.yaml'), 'a: 1');
    assert.equal(statSync(join(run, 'c.yaml')).mode & 0o777, 0o600);
    symlinkSync(join(dir, 'target'), join(run, 'link.log'));
    assert.throws(() => openPrivateLog(join(run, 'link.log')), /ELOOP/);
    symlinkSync(run, join(dir, 'dirlink'));
    assert.throws(() => prepareRunDir(join(dir, 'dirlink')), /not a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plan: --kv-transfer tcp starts no kv-server; engines get TcpConnector roles and no KV config file', () => {
  const plan = makePlan({ ...base, kvTransfer: 'tcp' }, { kv: null, prefill: [5001], decode: [5003] }, yamlFor);
  assert.equal(plan.kvServer, null);
  assert.deepEqual(plan.files, {});
  const [p, d] = plan.engines;
  const cfgOf = (a: string[]) => JSON.parse(a[a.indexOf('--kv-transfer-config') + 1]!);
  assert.deepEqual(cfgOf(p!.args), { kv_connector: 'TcpConnector', kv_role: 'kv_producer' });
  assert.deepEqual(cfgOf(d!.args), { kv_connector: 'TcpConnector', kv_role: 'kv_consumer' });
  assert.ok(!p!.args.includes('--kv-config'));
  assert.ok(!plan.proxy.args.includes('--kv-server'));
});

test('plan: --kv-mode push reaches the proxy with --kv-transfer tcp, and is refused without it', () => {
  const plan = makePlan({ ...base, kvTransfer: 'tcp', kvMode: 'push' }, { kv: null, prefill: [5001], decode: [5003] }, yamlFor);
  const a = plan.proxy.args;
  assert.equal(a[a.indexOf('--kv-mode') + 1], 'push');
  assert.ok(!makePlan({ ...base, kvTransfer: 'tcp' }, { kv: null, prefill: [5001], decode: [5003] }, yamlFor).proxy.args.includes('--kv-mode'));
  assert.throws(() => makePlan({ ...base, kvTransfer: 'pool', kvMode: 'push' }, { kv: 5000, prefill: [5001], decode: [5003] }, yamlFor), /--kv-mode push needs --kv-transfer tcp/);
});
