// `pdserve proxy` as a real process: vLLM-style flags, serves through a stub engine, exits 0 on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startStub, sendJson, completion } from '../helpers/stub-upstream.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('pdserve proxy --prefiller-host/--prefiller-port/--decoder-host/--decoder-port', async () => {
  const p = await startStub((r, res) => sendJson(res, 200, completion('P')));
  const d = await startStub((r, res) => sendJson(res, 200, completion('D')));
  const port = (u: string) => new URL(u).port;
  const child = spawn(process.execPath, [
    cli, 'proxy', '--host', '127.0.0.1', '--port', '0',
    '--prefiller-host', '127.0.0.1', '--prefiller-port', port(p.url),
    '--decoder-host', '127.0.0.1', '--decoder-port', port(d.url),
    '--stats-interval', '0.2',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no startup line: ${out}`)), 10_000);
      child.stdout.on('data', () => {
        const m = /proxy on (http:\/\/[\d.]+:\d+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      });
      child.on('exit', () => reject(new Error(`proxy exited: ${out}`)));
    });
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'hi', max_tokens: 3 }) });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as any).choices[0].text, 'D');
    assert.equal(p.requests[0]!.body.max_tokens, 1);
    const hc = (await (await fetch(`${url}/healthcheck`)).json()) as any;
    assert.deepEqual([hc.status, hc.prefill_instances, hc.decode_instances], ['ok', 1, 1]);
    for (let i = 0; i < 50 && !out.includes('Num requests: 1'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(out, /Num requests: 1\n/);
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    assert.equal(code, 0);
  } finally {
    child.kill('SIGKILL');
    await p.close();
    await d.close();
  }
});

test('pdserve proxy with a bad flag exits non-zero with a clear message', async () => {
  const child = spawn(process.execPath, [cli, 'proxy', '--port', '0', '--prefiller', 'http://a:1/v1', '--decoder', 'http://b:2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.notEqual(code, 0);
  assert.match(err, /must not have a path/);
});

test('pdserve proxy --kv-mode accepts pull or push only', async () => {
  const child = spawn(process.execPath, [cli, 'proxy', '--port', '0', '--decoder', 'http://b:2', '--kv-mode', 'sideways'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.notEqual(code, 0);
  assert.match(err, /--kv-mode.*(pull|push)/);
});
