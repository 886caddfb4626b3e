// `pdserve up`: start kv-server, prefillers, decoders and the proxy; wait until all answer; then
// supervise. Ctrl+C / SIGTERM stops every child (SIGTERM, SIGKILL after the grace period) and exits 0.
// A child that dies during start-up is named with its log tail, the others are stopped, exit non-zero.
// After start-up a dead child is reported (log tail) and restarted on the same port with exponential
// backoff (restart-policy.ts); one that dies more than maxRestarts times within the window is given up
// (the proxy routes around it; decoders compute prompts themselves without the kv-server). Giving up on
// the proxy stops everything (exit 1).
// Files: the run directory is 0700; configs, logs, the internal secret (every child gets its path) and
// up.json (this pid + the pool file, so a later `up` can remove a pool a killed one left) are 0600.
// Children hold a lifeline (src/util/lifeline.ts): they stop when `up` dies, even by SIGKILL.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateInternalSecretFile } from '../security/internal-secret.js';
import { Child, describeExit, tailFile } from './child.js';
import { kvYaml } from './kv-yaml.js';
import { kvEventsWanted, makePlan, type ChildKind, type ChildSpec, type UpOptions } from './plan.js';
import { assertPortFree, freePort, freePorts } from './ports.js';
import { decideRestart, defaultRestartPolicy, type RestartPolicy } from './restart-policy.js';
import { prepareRunDir, removeOwner, writeOwner, writePrivateFile } from './run-dir.js';
import { removePoolFiles, removeStalePools } from './stale-pool.js';

export const READY_LINE = 'All servers are up. You can send request now...';
export const SECRET_FILE_NAME = 'internal-secret';

export interface UpIo {
  out(line: string): void;
  err(line: string): void;
}

const cliPath = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/**
 * The command (program + leading args) that runs a child. The proxy is always this CLI; the
 * engines and the kv-server too, unless PDSERVE_UP_ENGINE_CMD holds a JSON array (tests use stubs).
 */
export function commandFor(kind: ChildKind, env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env.PDSERVE_UP_ENGINE_CMD;
  if (kind !== 'proxy' && override) {
    const v = JSON.parse(override) as unknown;
    if (!Array.isArray(v) || !v.length || !v.every((x) => typeof x === 'string')) {
      throw new Error('PDSERVE_UP_ENGINE_CMD must be a JSON array of strings');
    }
    return v as string[];
  }
  return [process.execPath, cliPath];
}

/** One supervised role instance: the process now running it and its restart history. */
interface Slot {
  spec: ChildSpec;
  child: Child;
  history: number[]; // restart times (ms) within the policy window
  givenUp: boolean;
  timer: NodeJS.Timeout | null; // a pending restart
}

export async function runUp(
  o: UpOptions,
  io: UpIo,
  signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'],
  policy: RestartPolicy = defaultRestartPolicy,
): Promise<number> {
  if (!Number.isInteger(o.decode) || o.decode < 1) throw new Error('--decode must be at least 1');
  if (!Number.isInteger(o.prefill) || o.prefill < 0) throw new Error('--prefill must be 0 or more');
  // fail now, not after the engines spent minutes loading
  if (o.port) await assertPortFree(o.host, o.port);
  prepareRunDir(o.runDir);
  for (const p of removeStalePools(o.runDir, dirname(o.kvPoolFile))) io.out(`pdserve up: removed stale pool file ${p} (the pdserve up that made it is gone)`);
  const pool = o.prefill > 0 && o.kvTransfer !== 'tcp'; // tcp: engines move KV themselves, no kv-server
  writeOwner(o.runDir, { pid: process.pid, poolFile: pool ? o.kvPoolFile : null });
  const secretFile = join(o.runDir, SECRET_FILE_NAME);
  rmSync(secretFile, { force: true }); // a fresh secret per run
  generateInternalSecretFile(secretFile);
  const engines = o.prefill + o.decode;
  const kvEvents = kvEventsWanted(o);
  const n = (pool ? 1 : 0) + engines + (kvEvents ? 2 * engines : 0);
  const ports = await freePorts(n);
  const proxyPort = o.port || (await freePort());
  const opts: UpOptions = { ...o, port: proxyPort, internalSecretFile: secretFile };
  const kv = pool ? ports.shift()! : null;
  const prefill = ports.splice(0, o.prefill);
  const decode = ports.splice(0, o.decode);
  const kvEventPorts = kvEvents ? Array.from({ length: engines }, () => ports.splice(0, 2) as [number, number]) : undefined;
  const plan = makePlan(opts, { kv, prefill, decode, ...(kvEventPorts ? { kvEvents: kvEventPorts } : {}) }, (role, remoteUrl) =>
    kvYaml({ role, remoteUrl, chunkSize: o.chunkSize, transferChannel: o.kvTransfer === 'cuda_ipc' ? 'cuda_ipc' : 'pool' }),
  );
  for (const [path, text] of Object.entries(plan.files)) writePrivateFile(path, text);
  io.out(`pdserve up: run directory ${o.runDir}`);

  const slots: Slot[] = [];
  const everyChild: Child[] = [];
  let stopping = false;
  let supervising = false;
  let signalled = false;
  let wake!: () => void;
  const woken = new Promise<void>((r) => (wake = r));
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      // second signal: no more patience
      for (const c of everyChild) c.stop(0).catch(() => undefined);
      return;
    }
    signalled = true;
    io.out(`pdserve up: ${sig} received, stopping all servers...`);
    wake();
    finish(0);
  };
  for (const s of signals) process.on(s, onSignal);
  // last resort if `up` itself dies (uncaught error, process.exit): no orphaned engines
  // (SIGKILL of `up` is covered by the children's lifeline)
  const onExit = () => {
    for (const c of everyChild) if (!c.exit && c.pid) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  };
  process.on('exit', onExit);

  const proxyHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const hostOf = (spec: ChildSpec) => (spec.kind === 'proxy' ? proxyHost : '127.0.0.1');
  const reportFailure = (c: Child, what: string) => {
    const tail = tailFile(c.spec.logFile, 30);
    const lines = tail ? tail.split('\n').map((l) => `  | ${l}`).join('\n') : '  | (empty log)';
    io.err(`ERROR: ${c.spec.name} ${what}. Last lines of ${c.spec.logFile}:\n${lines}`);
  };
  const decodersLeft = () => slots.some((s) => s.spec.kind === 'decoder' && !s.givenUp);

  const spawnInto = (slot: Slot, note = ''): Child => {
    const c = new Child(slot.spec, commandFor(slot.spec.kind));
    slot.child = c;
    everyChild.push(c);
    io.out(`started ${slot.spec.name} (pid ${c.pid ?? '?'}) on port ${slot.spec.port}, log: ${slot.spec.logFile}${note}`);
    void c.exited.then(() => {
      if (stopping) return;
      if (supervising) onDeath(slot, c);
      else wake();
    });
    return c;
  };
  const start = (spec: ChildSpec): Child => {
    if (stopping) throw new Error('shutting down');
    const slot: Slot = { spec, child: null as unknown as Child, history: [], givenUp: false, timer: null };
    slots.push(slot);
    return spawnInto(slot);
  };
  const restart = (slot: Slot, attempt: number) => {
    slot.timer = null;
    if (stopping) return;
    // the dead kv-server's pool: the new one makes a fresh file (engines remap it at HELLO)
    if (slot.spec.kind === 'kv-server') removePoolFiles(o.kvPoolFile);
    const c = spawnInto(slot, ` (restart ${attempt})`);
    c.waitReady(hostOf(slot.spec), Date.now() + o.healthTimeoutMs).then(
      () => {
        if (!stopping) io.out(`pdserve up: ${slot.spec.name} is ready again (pid ${c.pid}, port ${slot.spec.port})`);
      },
      (e: Error) => {
        if (stopping || c.exit) return; // an exit is handled by onDeath
        io.err(`pdserve up: ${e.message}; stopping it`);
        void c.stop(o.graceMs); // its exit counts as a death
      },
    );
  };
  const onDeath = (slot: Slot, c: Child) => {
    if (slot.child !== c || slot.givenUp) return;
    reportFailure(c, `exited (${describeExit(c.exit!)})`);
    const d = decideRestart(policy, slot.history, Date.now());
    if (d.kind === 'give_up') {
      slot.givenUp = true;
      io.err(`pdserve up: ${slot.spec.name} was restarted ${d.restarts} times within ${policy.windowMs / 1000} s and died again; giving up on it`);
      if (slot.spec.kind === 'proxy') {
        io.err('pdserve up: the proxy is gone; stopping');
        finish(1);
      } else if (!decodersLeft()) io.err('pdserve up: every decoder is gone: requests get 503 until you restart');
      else io.err('pdserve up: continuing degraded (the proxy routes around dead servers)');
      return;
    }
    io.err(`pdserve up: restarting ${slot.spec.name} in ${d.delayMs} ms (restart ${d.attempt}; at most ${policy.maxRestarts} within ${policy.windowMs / 1000} s)`);
    slot.timer = setTimeout(() => restart(slot, d.attempt), d.delayMs);
  };

  const deadline = Date.now() + o.healthTimeoutMs;
  const ready = async (cs: Child[]) => {
    // fail fast: the first child to exit or time out ends the wait
    await Promise.all(cs.map((c) => c.waitReady(hostOf(c.spec), deadline)));
  };

  let code = 0;
  try {
    const startup = (async () => {
      if (plan.kvServer) await ready([start(plan.kvServer)]);
      if (signalled) return;
      const engines = plan.engines.map(start);
      await ready(engines);
      if (signalled) return;
      await ready([start(plan.proxy)]);
    })();
    const outcome = await Promise.race([startup.then(() => 'ready' as const, (e: Error) => e), woken.then(() => 'woken' as const)]);
    if (outcome instanceof Error || (outcome === 'woken' && !signalled)) {
      const dead = everyChild.find((c) => c.exit);
      if (dead) reportFailure(dead, `exited during startup (${describeExit(dead.exit!)})`);
      else if (outcome instanceof Error) {
        io.err(`ERROR: ${outcome.message}`);
        const slow = everyChild.find((c) => outcome.message.startsWith(c.spec.name));
        if (slow) reportFailure(slow, 'is not ready');
      }
      code = 1;
      return code;
    }
    if (signalled) return code;
    supervising = true;
    // a child that died between its readiness and now
    for (const s of slots) if (s.child.exit) onDeath(s, s.child);
    io.out(READY_LINE);
    io.out(`proxy: http://${proxyHost}:${proxyPort}  (${o.prefill} prefiller(s), ${o.decode} decoder(s); Ctrl+C stops all)`);
    code = await finished;
    return code;
  } finally {
    stopping = true;
    for (const s of slots) if (s.timer) clearTimeout(s.timer);
    // proxy first (no new requests), then engines, then the kv-server
    const tier = (k: ChildKind[]) => Promise.all(everyChild.filter((c) => k.includes(c.spec.kind)).map((c) => c.stop(o.graceMs)));
    await tier(['proxy']);
    await tier(['prefiller', 'decoder']);
    await tier(['kv-server']);
    if (plan.kvServer) removePoolFiles(o.kvPoolFile);
    rmSync(secretFile, { force: true });
    removeOwner(o.runDir);
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', onExit);
    io.out(`pdserve up: all servers stopped (logs in ${o.runDir})`);
  }
}
