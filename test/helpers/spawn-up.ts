// Runs `pdserve up ...` and waits for "All servers are up"; logs of every child are in runDir.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from './fixtures.js';
import { freePort } from './spawn-server.js';

export interface UpRun {
  url: string;
  runDir: string;
  proc: ChildProcess;
  output(): string;
  log(name: string): string; // e.g. 'decoder-0', 'prefiller-1', 'kv-server', 'proxy'
  stop(): Promise<number | null>;
}

export async function spawnUp(args: string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = {}): Promise<UpRun> {
  const port = await freePort();
  const runDir = mkdtempSync(join(tmpdir(), 'pdserve-up-'));
  const dd = args.indexOf('--');
  const own = ['--port', String(port), '--run-dir', runDir, '--grace-period', '3'];
  const argv = dd < 0 ? [...args, ...own] : [...args.slice(0, dd), ...own, ...args.slice(dd)];
  const proc = spawn(process.execPath, [cliPath, 'up', ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  const deadline = Date.now() + timeoutMs;
  while (!out.includes('All servers are up. You can send request now...')) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`pdserve up did not come up:\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    runDir,
    proc,
    output: () => out,
    log: (name) => {
      const f = join(runDir, `${name}.log`);
      return existsSync(f) ? readFileSync(f, 'utf8') : '';
    },
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
