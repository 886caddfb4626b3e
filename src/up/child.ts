// One process started by `up`: its own process group, stdout+stderr to its log file (0600), and a
// lifeline pipe on fd 3 (src/util/lifeline.ts): when `up` dies the child reads EOF and stops.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { connect } from 'node:net';
import { request } from 'undici';
import { LIFELINE_FD_ENV } from '../util/lifeline.js';
import type { ChildSpec } from './plan.js';
import { openPrivateLog } from './run-dir.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: string; // spawn failure (e.g. ENOENT)
}

export class Child {
  readonly spec: ChildSpec;
  readonly proc: ChildProcess;
  exit: ExitInfo | null = null;
  readonly exited: Promise<ExitInfo>;

  /** cmd = the program and its leading args (e.g. [node, main.js]); spec.args follow. */
  constructor(spec: ChildSpec, cmd: string[]) {
    this.spec = spec;
    const fd = openPrivateLog(spec.logFile);
    try {
      this.proc = spawn(cmd[0]!, [...cmd.slice(1), ...spec.args], {
        // fd 3: the lifeline; `up` never writes to it and never closes it while it lives
        stdio: ['ignore', fd, fd, 'pipe'],
        env: childEnv(spec.env),
        detached: true, // own process group: Ctrl+C reaches only `up`, which stops the group
      });
    } finally {
      closeSync(fd);
    }
    const lifeline = this.proc.stdio[3] as NodeJS.ReadableStream & { unref?: () => void; on(e: string, f: () => void): unknown } | null;
    lifeline?.on('error', () => undefined); // the child's end closing is not an error of `up`
    lifeline?.unref?.();
    this.exited = new Promise((resolve) => {
      this.proc.once('error', (e) => {
        this.exit ??= { code: null, signal: null, error: e.message };
        resolve(this.exit);
      });
      this.proc.once('exit', (code, signal) => {
        this.exit ??= { code, signal };
        resolve(this.exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Signals the whole process group (falls back to the process alone). */
  private signal(sig: NodeJS.Signals): void {
    if (this.exit || !this.proc.pid) return;
    try {
      process.kill(-this.proc.pid, sig);
    } catch {
      try {
        this.proc.kill(sig);
      } catch {
        /* already gone */
      }
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process has exited. */
  async stop(graceMs: number): Promise<void> {
    if (this.exit) return;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // the leader is gone; take down anything it left in its group
    if (this.proc.pid) {
      try {
        process.kill(-this.proc.pid, 'SIGKILL');
      } catch {
        /* group empty */
      }
    }
  }

  /**
   * Resolves when the child answers (GET /health 2xx, or a TCP connect for the kv-server).
   * Rejects with a message when it exits first or `deadline` (epoch ms) passes.
   */
  async waitReady(host: string, deadline: number): Promise<void> {
    let lastError = 'no answer yet';
    while (!this.exit) {
      if (Date.now() > deadline) throw new Error(`${this.spec.name} did not become ready in time (last: ${lastError})`);
      try {
        if (this.spec.ready === 'tcp') await tcpProbe(host, this.spec.port);
        else {
          const res = await request(`http://${host}:${this.spec.port}/health`, { headersTimeout: 2000, bodyTimeout: 2000 });
          await res.body.dump();
          if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`GET /health answered ${res.statusCode}`);
        }
        return;
      } catch (e) {
        lastError = (e as Error).message;
      }
      await Promise.race([new Promise((r) => setTimeout(r, 250)), this.exited]);
    }
    throw new Error(`${this.spec.name} exited during startup (${describeExit(this.exit)})`);
  }
}

/** up's environment plus spec.env (null = unset) plus the lifeline fd. */
export function childEnv(extra: Record<string, string | null>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  env[LIFELINE_FD_ENV] = '3';
  return env;
}

export function describeExit(e: ExitInfo): string {
  if (e.error) return `failed to start: ${e.error}`;
  if (e.signal) return `killed by ${e.signal}`;
  return `exit code ${e.code}`;
}

function tcpProbe(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const t = setTimeout(() => s.destroy(new Error('connect timeout')), 2000);
    s.once('connect', () => {
      clearTimeout(t);
      s.end();
      resolve();
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** The last n lines of a file, read from its last 64 KiB ('' when unreadable). */
export function tailFile(path: string, n = 30): string {
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    if (len < size) lines.shift(); // likely a partial line
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-n).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
