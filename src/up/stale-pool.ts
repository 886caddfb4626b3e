// Pool files of a `pdserve up` that died without cleaning up (SIGKILL while its kv-server was also
// gone). Only files of this user whose owning `up` is dead are removed: named ones by the run
// directory's up.json, default-named ones (pdserve-up-<pid>-<random>.pool[.N]) by a scan of their directory.
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readOwner } from './run-dir.js';

export const DEFAULT_POOL_RE = /^pdserve-up-(\d+)-[0-9a-f]+\.pool(?:\.\d+)?$/;

/** An unpredictable default pool path for the `up` of pid in dir (the pid lets a later `up` judge staleness). */
export function defaultPoolFile(dir: string, pid = process.pid): string {
  return join(dir, `pdserve-up-${pid}-${randomBytes(8).toString('hex')}.pool`);
}

/** True while pid names a live process (ours or another user's). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ownRegularFile(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isFile() && (typeof process.getuid !== 'function' || st.uid === process.getuid());
  } catch {
    return false;
  }
}

/** Removes a pool file and its extra segments (<path>.1, <path>.2, ...); returns the paths removed. */
export function removePoolFiles(poolFile: string): string[] {
  const removed: string[] = [];
  for (let i = 0; i < 4096; i++) {
    const p = i === 0 ? poolFile : `${poolFile}.${i}`;
    if (!ownRegularFile(p)) {
      if (i > 0) break;
      continue;
    }
    rmSync(p, { force: true });
    removed.push(p);
  }
  return removed;
}

/**
 * Removes stale pools: the one recorded in runDir's up.json when its pid is dead, and every
 * default-named pool in scanDir whose pid is dead (never selfPid's). Returns the paths removed.
 */
export function removeStalePools(runDir: string, scanDir: string | null, selfPid = process.pid): string[] {
  const removed: string[] = [];
  const rec = readOwner(runDir);
  if (rec && rec.pid !== selfPid && rec.poolFile && !pidAlive(rec.pid)) removed.push(...removePoolFiles(rec.poolFile));
  if (scanDir) {
    let names: string[] = [];
    try {
      names = readdirSync(scanDir);
    } catch {
      /* no directory: nothing to scan */
    }
    for (const name of names) {
      const m = DEFAULT_POOL_RE.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === selfPid || pidAlive(pid)) continue;
      const p = join(scanDir, name);
      if (ownRegularFile(p)) {
        rmSync(p, { force: true });
        removed.push(p);
      }
    }
  }
  return removed;
}
