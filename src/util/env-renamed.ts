// The old PDS_* environment names (ENV_KNOBS' `renamedFrom`; each is PDSERVE_* now). None is read any more:
// when one is still set, startup warns once per name, naming the new one, so a stale export is not silently
// ignored. The old value is never used.
import { ENV_KNOBS } from './env-knobs.js';
import { getLogger } from './logger.js';

export interface RenamedEnv {
  old: string;
  now: string;
}

/** The renamed knobs whose old name is set (non-empty) in `env`, in ENV_KNOBS order. */
export function renamedEnvSet(env: NodeJS.ProcessEnv = process.env): RenamedEnv[] {
  const out: RenamedEnv[] = [];
  for (const k of ENV_KNOBS) if (k.renamedFrom && env[k.renamedFrom]) out.push({ old: k.renamedFrom, now: k.name });
  return out;
}

let warned = false;

/** Warns (once per process; later calls do nothing) about each old name set. Returns how many it warned of. */
export function warnRenamedEnv(env: NodeJS.ProcessEnv = process.env, warn: (msg: string) => void = (m) => getLogger('env').warn(m)): number {
  if (warned) return 0;
  warned = true;
  const set = renamedEnvSet(env);
  for (const r of set) warn(`${r.old} is no longer read: it is now ${r.now} (set that instead)`);
  return set.length;
}
