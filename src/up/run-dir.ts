// The run directory of one `pdserve up`: private (0700), its files 0600, never through a symlink.
// up.json records the owning `up` (pid, pool file) so a later `up` can clean what a killed one left.
import { closeSync, constants, fchmodSync, lstatSync, mkdirSync, openSync, readFileSync, rmSync, writeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW;

/** Creates (or takes over) dir as a 0700 directory of this user; throws for a symlink or another owner. */
export function prepareRunDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`run directory ${dir} is not a directory (a symlink?)`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`run directory ${dir} belongs to uid ${st.uid}, not to this user`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** Writes a file of mode 0600 (truncating an old one; refusing a symlink). */
export function writePrivateFile(path: string, text: string): void {
  const fd = openSync(path, WRITE_FLAGS | constants.O_TRUNC, 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** Opens a log file for appending, mode 0600 (an old one is chmod'ed); the caller closes the fd. */
export function openPrivateLog(path: string): number {
  const fd = openSync(path, WRITE_FLAGS | constants.O_APPEND, 0o600);
  try {
    fchmodSync(fd, 0o600);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

export interface OwnerRecord {
  pid: number; // the `up` process
  poolFile: string | null;
}

const ownerPath = (runDir: string) => join(runDir, 'up.json');

export function writeOwner(runDir: string, rec: OwnerRecord): void {
  writePrivateFile(ownerPath(runDir), JSON.stringify(rec) + '\n');
}

/** The record a previous `up` left in runDir, or null (none, unreadable, malformed). */
export function readOwner(runDir: string): OwnerRecord | null {
  try {
    const v = JSON.parse(readFileSync(ownerPath(runDir), 'utf8')) as Partial<OwnerRecord>;
    if (!Number.isInteger(v.pid) || (v.poolFile !== null && typeof v.poolFile !== 'string')) return null;
    return { pid: v.pid!, poolFile: v.poolFile ?? null };
  } catch {
    return null;
  }
}

export function removeOwner(runDir: string): void {
  rmSync(ownerPath(runDir), { force: true });
}
