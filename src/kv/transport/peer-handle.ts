// Parent side of peer-process.ts: spawns one (optionally under a prefix such as `ip netns exec NS`),
// collects its JSON event lines, waits for an event with a timeout, sends stdin commands, stops it.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PEER_PROCESS = join(dirname(fileURLToPath(import.meta.url)), 'peer-process.js');

export interface PeerEvent {
  event: string;
  [k: string]: unknown;
}

export interface PeerHandle {
  proc: ChildProcess;
  events: PeerEvent[];
  /** The first event (from index `from`) matching pred; rejects after timeoutMs or when the process exits. */
  next(pred: (e: PeerEvent) => boolean, timeoutMs: number, from?: number): Promise<PeerEvent>;
  send(line: string): void;
  stderr(): string;
  /** Closes stdin (the process exits by itself), SIGKILL after graceMs. */
  stop(graceMs?: number): Promise<void>;
}

export function spawnPeer(prefix: string[], mode: 'serve' | 'read', args: string[]): PeerHandle {
  const argv = [...prefix, process.execPath, PEER_PROCESS, mode, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const events: PeerEvent[] = [];
  let err = '';
  let buf = '';
  let exited = false;
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        events.push(JSON.parse(line) as PeerEvent);
      } catch {
        err += `(stdout) ${line}\n`;
      }
    }
    wake();
  });
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-20_000)));
  proc.stdin!.on('error', () => undefined);
  const exit = new Promise<void>((r) =>
    proc.on('exit', () => {
      exited = true;
      wake();
      r();
    }),
  );
  return {
    proc,
    events,
    next(pred, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const e = events.slice(from).find(pred);
          if (e) return done(() => resolve(e));
          if (exited) done(() => reject(new Error(`peer process exited before the awaited event; stderr: ${err.slice(-2000)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no awaited event from the peer process within ${timeoutMs} ms; events: ${JSON.stringify(events.slice(-5))}; stderr: ${err.slice(-2000)}`))), timeoutMs);
        const done = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
    send(line) {
      if (!exited) proc.stdin!.write(line + '\n');
    },
    stderr: () => err,
    async stop(graceMs = 5000) {
      if (exited) return;
      proc.stdin!.end();
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    },
  };
}
