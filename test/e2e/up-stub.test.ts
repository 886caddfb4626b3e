// `pdserve up` with stub engines and kv-server (PDSERVE_UP_ENGINE_CMD) and the real proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const stubChild = fileURLToPath(new URL('../helpers/stub-child.js', import.meta.url));
const READY = 'All servers are up. You can send request now...';

interface Up {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

function startUp(args: string[], env: Record<string, string> = {}): Up {
  const proc = spawn(process.execPath, [cli, 'up', ...args], {
    env: { ...process.env, PDSERVE_UP_ENGINE_CMD: JSON.stringify([process.execPath, stubChild]), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (err += b));
  const exit = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  return { proc, out: () => out, err: () => err, exit };
}

async function until(cond: () => boolean, what: () => string, ms = 20_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const pids = (out: string) => [...out.matchAll(/started (\S+) \(pid (\d+)\)/g)].map((m) => ({ name: m[1]!, pid: Number(m[2]) }));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('up 1P2D: configs, flags, ready line, routing through the proxy; SIGTERM stops all and removes the pool file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pdserve-up-'));
  const argsDir = join(dir, 'args');
  const pool = join(dir, 'kv.pool');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(argsDir);
  const up = startUp(
    ['tiny-model', '--prefill', '1', '--decode', '2', '--port', '0', '--host', '127.0.0.1', '--run-dir', join(dir, 'run'),
      '--kv-pool-file', pool, '--kv-pool-size', '64M', '--decode-devices', '2,3', '--grace-period', '0.5', '--api-key', 'user-key-1', '--', '--max-model-len', '512'],
    { STUB_ARGS_DIR: argsDir, STUB_IGNORE_TERM_MATCH: 'kv_producer', STUB_KEEP_POOL: '1', VLLM_API_KEY: 'not-for-engines' },
  );
  try {
    await until(() => up.out().includes(READY), () => up.out() + up.err());
    assert.match(up.out(), new RegExp(`run directory ${join(dir, 'run')}`));
    const url = /proxy: (http:\/\/[\d.]+:\d+)/.exec(up.out())![1]!;
    const kids = pids(up.out());
    assert.deepEqual(kids.map((k) => k.name).sort(), ['decoder-0', 'decoder-1', 'kv-server', 'prefiller-0', 'proxy']);
    assert.ok(existsSync(pool));

    const files = readdirSync(argsDir).filter((f) => !f.endsWith('.env.json'));
    const argsOf = (prefix: string) => files.filter((f) => f.startsWith(prefix)).map((f) => JSON.parse(readFileSync(join(argsDir, f), 'utf8')) as string[]);

    // private run directory; configs, logs and the secret 0600; every child knows the secret's path;
    // the users' key reaches the proxy only
    const { statSync } = await import('node:fs');
    const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
    const run = join(dir, 'run');
    assert.equal(mode(run), '700');
    for (const f of readdirSync(run)) assert.equal(mode(join(run, f)), '600', f);
    const secret = join(run, 'internal-secret');
    assert.match(readFileSync(secret, 'utf8'), /^[0-9a-f]{64}\n$/);
    const envs = readdirSync(argsDir).filter((f) => f.endsWith('.env.json')).map((f) => JSON.parse(readFileSync(join(argsDir, f), 'utf8')));
    assert.equal(envs.length, 4);
    for (const e of envs) assert.deepEqual(e, { secret, apiKey: null, vllmKey: null });
    const [kvArgs] = argsOf('kv-server');
    assert.deepEqual(kvArgs!.slice(0, 1), ['kv-server']);
    assert.equal(kvArgs![kvArgs!.indexOf('--pool-size') + 1], '64M');
    const kvPort = kvArgs![kvArgs!.indexOf('--port') + 1];
    const [pArgs] = argsOf('kv_producer');
    assert.deepEqual(pArgs!.slice(0, 2), ['serve', 'tiny-model']);
    assert.deepEqual(JSON.parse(pArgs![pArgs!.indexOf('--kv-transfer-config') + 1]!), { kv_connector: 'PdConnector', kv_role: 'kv_producer' });
    assert.deepEqual(pArgs!.slice(-2), ['--max-model-len', '512'], 'flags after -- reach every engine');
    const pyaml = readFileSync(pArgs![pArgs!.indexOf('--kv-config') + 1]!, 'utf8');
    assert.match(pyaml, new RegExp(`remote_url: pdkv://127.0.0.1:${kvPort}`));
    assert.match(pyaml, /chunk_size: 256/);
    assert.match(pyaml, /local_cpu: false/);
    const dArgs = argsOf('kv_consumer');
    assert.equal(dArgs.length, 2);
    assert.deepEqual(dArgs.map((a) => a[a.indexOf('--device') + 1]).sort(), ['cuda:2', 'cuda:3']);
    assert.match(readFileSync(dArgs[0]![dArgs[0]!.indexOf('--kv-config') + 1]!, 'utf8'), /local_cpu: true/);

    const proxyPid = kids.find((k) => k.name === 'proxy')!.pid;
    const proxyEnv = readFileSync(`/proc/${proxyPid}/environ`, 'utf8').split('\0');
    assert.ok(proxyEnv.includes('PDSERVE_API_KEY=user-key-1'), 'the proxy gets the users\' key');
    assert.ok(proxyEnv.includes(`PDSERVE_INTERNAL_SECRET_FILE=${secret}`));
    assert.ok(!proxyEnv.some((l) => l.startsWith('VLLM_API_KEY=')));
    assert.ok(!readFileSync(`/proc/${proxyPid}/cmdline`, 'utf8').includes('user-key-1'), 'no key on a command line');
    const health = (await (await fetch(`${url}/health`)).json()) as any;
    assert.deepEqual(health.kv_server, { address: `127.0.0.1:${kvPort}`, healthy: true, last_error: null }, 'the proxy probes the kv-server');

    const texts = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'hi', max_tokens: 2 }) });
      assert.equal(res.status, 200);
      texts.add(((await res.json()) as any).choices[0].text);
    }
    assert.equal(texts.size, 2, 'both decoders served');
    for (const t of texts) assert.match(t, /^kv_consumer:\d+$/);

    up.proc.kill('SIGTERM');
    assert.equal(await up.exit, 0);
    for (const k of kids) assert.equal(alive(k.pid), false, `${k.name} is gone`);
    assert.equal(existsSync(pool), false, 'pool file removed');
    assert.equal(existsSync(secret), false, 'secret removed');
    assert.equal(existsSync(join(run, 'up.json')), false);
    assert.ok(readFileSync(join(dir, 'run', 'prefiller-0.log'), 'utf8').includes('ignoring SIGTERM'), 'the stubborn one needed SIGKILL');
  } finally {
    up.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up: a child that fails at startup is named with its log tail; the others are stopped; exit non-zero', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pdserve-up-'));
  const pool = join(dir, 'kv.pool');
  const up = startUp(['--prefill', '1', '--decode', '1', '--port', '0', '--run-dir', dir, '--kv-pool-file', pool, '--grace-period', '1'], {
    STUB_FAIL_MATCH: 'kv_consumer',
  });
  try {
    const code = await Promise.race([up.exit, new Promise<'hang'>((r) => setTimeout(() => r('hang'), 20_000).unref())]);
    assert.notEqual(code, 'hang');
    assert.notEqual(code, 0);
    assert.doesNotMatch(up.out(), new RegExp(READY.replace(/\./g, '\\.')));
    assert.match(up.err(), /decoder-0 exited during startup \(exit code 3\)/);
    assert.match(up.err(), /fatal: failing on purpose/);
    assert.match(up.err(), /line 40/);
    assert.doesNotMatch(up.err(), /line 5\n/, 'only the tail');
    for (const k of pids(up.out())) assert.equal(alive(k.pid), false, `${k.name} is gone`);
    assert.equal(existsSync(pool), false);
  } finally {
    up.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up --prefill 0: a dead decoder or proxy is restarted on its port; one that keeps dying is given up; giving up on the proxy stops everything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pdserve-up-'));
  const argsDir = join(dir, 'args');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(argsDir);
  const up = startUp(['--prefill', '0', '--decode', '2', '--port', '0', '--run-dir', join(dir, 'run'), '--grace-period', '1', '--max-restarts', '1'], { STUB_ARGS_DIR: argsDir });
  const all = () => up.out() + up.err();
  try {
    await until(() => up.out().includes(READY), all);
    const kids = pids(up.out());
    assert.deepEqual(kids.map((k) => k.name).sort(), ['decoder-0', 'decoder-1', 'proxy']);
    for (const f of readdirSync(argsDir).filter((f) => !f.endsWith('.env.json'))) {
      const a = JSON.parse(readFileSync(join(argsDir, f), 'utf8')) as string[];
      assert.equal(a.includes('--kv-transfer-config'), false);
      assert.equal(a.includes('--kv-config'), false);
    }
    const url = /proxy: (http:\/\/[\d.]+:\d+)/.exec(up.out())![1]!;
    const ask = async () => ((await (await fetch(`${url}/v1/completions`, { method: 'POST', body: '{"prompt":"x"}' })).json()) as any).choices[0].text as string;
    const texts = [await ask(), await ask()];
    assert.equal(new Set(texts).size, 2);
    for (const t of texts) assert.match(t, /^colocated:\d+$/);
    const latest = (name: string) => pids(up.out()).filter((k) => k.name === name).at(-1)!.pid;
    const d1port = /started decoder-1 \(pid \d+\) on port (\d+)/.exec(up.out())![1];

    // decoder-1 killed: reported, restarted on the same port, serving again
    process.kill(latest('decoder-1'), 'SIGKILL');
    await until(() => /decoder-1 is ready again/.test(up.out()), all);
    assert.match(up.err(), /decoder-1 exited \(killed by SIGKILL\)/);
    assert.match(up.err(), /restarting decoder-1 in \d+ ms \(restart 1; at most 1 within 60 s\)/);
    assert.match(up.out(), new RegExp(`started decoder-1 \\(pid \\d+\\) on port ${d1port}, .*\\(restart 1\\)`));
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) seen.add(await ask());
    assert.ok(seen.has(`colocated:${d1port}`), 'the restarted decoder serves on its old port');

    // dies again within the window: given up; the proxy routes around it
    process.kill(latest('decoder-1'), 'SIGKILL');
    await until(() => /giving up on it/.test(up.err()) && /continuing degraded/.test(up.err()), all);
    for (let i = 0; i < 3; i++) assert.match(await ask(), /^colocated:\d+$/, 'the surviving decoder serves');

    // the proxy killed: restarted on the same port
    process.kill(latest('proxy'), 'SIGKILL');
    await until(() => /proxy is ready again/.test(up.out()), all);
    assert.match(await ask(), /^colocated:\d+$/);
    // and again: given up, which stops everything
    process.kill(latest('proxy'), 'SIGKILL');
    const code = await up.exit;
    assert.equal(code, 1);
    assert.match(up.err(), /the proxy is gone; stopping/);
    for (const k of pids(up.out())) assert.equal(alive(k.pid), false, `${k.name} (${k.pid}) is gone`);
  } finally {
    up.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up killed by SIGKILL: its children stop by themselves (lifeline); the next up removes the pool files a dead up left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pdserve-up-'));
  const runDir = join(dir, 'run');
  const pool = join(dir, 'kv.pool');
  // the kv-server stub keeps its pool on SIGTERM: the file is left behind as after a crash
  const args = ['--prefill', '1', '--decode', '1', '--port', '0', '--run-dir', runDir, '--kv-pool-file', pool, '--grace-period', '1'];
  const up = startUp(args, { STUB_KEEP_POOL: '1' });
  let up2: Up | null = null;
  try {
    await until(() => up.out().includes(READY), () => up.out() + up.err());
    const kids = pids(up.out());
    assert.equal(kids.length, 4);
    assert.equal(JSON.parse(readFileSync(join(runDir, 'up.json'), 'utf8')).pid, up.proc.pid, 'up.json names the owner');
    up.proc.kill('SIGKILL');
    await up.exit;
    await until(() => kids.every((k) => !alive(k.pid)), () => `alive: ${kids.filter((k) => alive(k.pid)).map((k) => k.name)}`, 15_000);
    assert.ok(existsSync(pool), 'the pool file was left behind');
    // a default-named pool of another dead up in the same directory, and one of a live process
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.on('exit', r));
    const { writeFileSync } = await import('node:fs');
    const stale = join(dir, `pdserve-up-${gone.pid}-00ff00ff.pool`);
    const live = join(dir, `pdserve-up-${process.pid}-00ff00ff.pool`);
    writeFileSync(stale, 'x');
    writeFileSync(live, 'x');

    up2 = startUp(args);
    await until(() => up2!.out().includes(READY), () => up2!.out() + up2!.err());
    assert.match(up2.out(), new RegExp(`removed stale pool file ${pool.replace(/[.]/g, '\\.')}`), 'the pool named in up.json');
    assert.match(up2.out(), new RegExp(`removed stale pool file ${stale.replace(/[.]/g, '\\.')}`));
    assert.equal(existsSync(stale), false);
    assert.equal(existsSync(live), true, 'a pool whose up still runs is kept');
    up2.proc.kill('SIGTERM');
    assert.equal(await up2.exit, 0);
    assert.equal(existsSync(pool), false);
  } finally {
    up.proc.kill('SIGKILL');
    up2?.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up: a child that never becomes ready hits --health-timeout; a busy --port fails before anything starts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pdserve-up-'));
  const up = startUp(['--prefill', '0', '--decode', '1', '--port', '0', '--run-dir', dir, '--health-timeout', '1', '--grace-period', '1'], {
    STUB_NO_LISTEN_MATCH: 'serve',
  });
  const { createServer } = await import('node:net');
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  try {
    assert.equal(await up.exit, 1);
    assert.match(up.err(), /decoder-0 did not become ready in time/);
    assert.match(up.err(), /loading forever/);
    for (const k of pids(up.out())) assert.equal(alive(k.pid), false, `${k.name} is gone`);

    const port = (busy.address() as { port: number }).port;
    const up2 = startUp(['--prefill', '0', '--decode', '1', '--host', '127.0.0.1', '--port', String(port), '--run-dir', dir]);
    assert.equal(await up2.exit, 2);
    assert.match(up2.err(), new RegExp(`cannot listen on 127.0.0.1:${port} \\(EADDRINUSE\\)`));
    assert.doesNotMatch(up2.out(), /started/);
  } finally {
    up.proc.kill('SIGKILL');
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
