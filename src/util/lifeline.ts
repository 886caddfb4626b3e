// The lifeline: `pdserve up` gives each child an extra pipe (fd PDSERVE_LIFELINE_FD) and never writes
// to it. When `up` dies, however it dies (SIGKILL included), the kernel closes its end and the child
// reads EOF: it then stops itself with SIGTERM (so its own cleanup runs: the kv-server removes its
// pool file), and exits for sure after graceMs.
import { Socket } from 'node:net';

export const LIFELINE_FD_ENV = 'PDSERVE_LIFELINE_FD';

/** Watches the lifeline when the env names one; returns true when it does. Call once, at start. */
export function watchLifeline(env: NodeJS.ProcessEnv = process.env, graceMs = 5000, onLost?: () => void): boolean {
  const raw = env[LIFELINE_FD_ENV];
  if (!raw) return false;
  const fd = Number(raw);
  if (!Number.isInteger(fd) || fd < 3) return false;
  delete env[LIFELINE_FD_ENV]; // not for grandchildren
  let sock: Socket;
  try {
    sock = new Socket({ fd, readable: true, writable: false });
  } catch {
    return false;
  }
  let lost = false;
  const lose = () => {
    if (lost) return;
    lost = true;
    process.stderr.write('pdserve: the supervising `pdserve up` is gone (lifeline closed); stopping\n');
    setTimeout(() => process.exit(1), graceMs).unref();
    if (onLost) onLost();
    else process.kill(process.pid, 'SIGTERM');
  };
  sock.on('data', () => undefined); // nothing is ever sent; drain if something is
  sock.once('end', lose);
  sock.once('close', lose);
  sock.once('error', lose);
  sock.unref(); // the lifeline alone keeps nothing alive
  return true;
}
