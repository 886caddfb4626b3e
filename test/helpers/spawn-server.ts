// Spawns a real `pdserve` process on loopback and waits until it answers /health.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cliPath } from './fixtures.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Spawned {
  url: string;
  port: number;
  proc: ChildProcess;
  /** everything the process printed so far (stdout + stderr) */
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `pdserve <args...> --port P` (the port is appended unless args has one) and waits for GET /health == 200. */
export async function spawnPdserve(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; healthPath?: string; noPort?: boolean } = {}): Promise<Spawned> {
  let port = 0;
  const full = [...args];
  const pi = full.indexOf('--port');
  if (pi >= 0) port = Number(full[pi + 1]);
  else if (!opts.noPort) {
    port = await freePort();
    full.push('--port', String(port));
  }
  const proc = spawn(process.execPath, [cliPath, ...full], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let ok = false;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const r = await fetch(url + (opts.healthPath ?? '/health'));
      if (r.status === 200) {
        ok = true;
        break;
      }
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null) proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  if (!ok) {
    await stop('SIGKILL');
    throw new Error(`pdserve ${full.join(' ')} did not become healthy:\n${out.slice(-3000)}`);
  }
  return { url, port, proc, logs: () => out, stop };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}
