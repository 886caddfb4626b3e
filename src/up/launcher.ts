// `pdserve up`: start kv-server, prefillers, decoders and the proxy; wait until all answer; then
// supervise. Ctrl+C / SIGTERM stops every child (SIGTERM, SIGKILL after the grace period) and exits 0.
// A child that dies during start-up is named with its log tail, the others are stopped, exit non-zero.
// After start-up a dead child is reported and the rest keep serving (the proxy routes around a dead
// prefiller; decoders compute prompts themselves without the kv-server; with no decoder left the proxy
// answers 503 at once); `up` gives up (exit 1) only when the proxy is gone.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Child, describeExit, tailFile } from './child.js';
import { kvYaml } from './kv-yaml.js';
import { makePlan, type ChildKind, type ChildSpec, type UpOptions } from './plan.js';
import { assertPortFree, freePort, freePorts } from './ports.js';

export const READY_LINE = 'All servers are up. You can send request now...';

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

export async function runUp(o: UpOptions, io: UpIo, signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']): Promise<number> {
  if (!Number.isInteger(o.decode) || o.decode < 1) throw new Error('--decode must be at least 1');
  if (!Number.isInteger(o.prefill) || o.prefill < 0) throw new Error('--prefill must be 0 or more');
  // fail now, not after the engines spent minutes loading
  if (o.port) await assertPortFree(o.host, o.port);
  mkdirSync(o.runDir, { recursive: true });
  const n = (o.prefill > 0 ? 1 : 0) + o.prefill + o.decode;
  const ports = await freePorts(n);
  const proxyPort = o.port || (await freePort());
  const opts = { ...o, port: proxyPort };
  const kv = o.prefill > 0 ? ports.shift()! : null;
  const plan = makePlan(opts, { kv, prefill: ports.splice(0, o.prefill), decode: ports.splice(0, o.decode) }, (role, remoteUrl) =>
    kvYaml({ role, remoteUrl, chunkSize: o.chunkSize, transferChannel: o.kvTransfer ?? 'pool' }),
  );
  for (const [path, text] of Object.entries(plan.files)) writeFileSync(path, text);
  io.out(`pdserve up: run directory ${o.runDir}`);

  const children: Child[] = [];
  let stopping = false;
  let signalled = false;
  let wake!: () => void;
  const woken = new Promise<void>((r) => (wake = r));
  // re-armable wake-up for supervision after start-up
  let rewake: () => void = () => {};
  const nextWake = () => new Promise<void>((r) => (rewake = r));
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      // second signal: no more patience
      for (const c of children) c.stop(0).catch(() => undefined);
      return;
    }
    signalled = true;
    io.out(`pdserve up: ${sig} received, stopping all servers...`);
    wake();
    rewake();
  };
  for (const s of signals) process.on(s, onSignal);
  // last resort if `up` itself dies (uncaught error, process.exit): no orphaned engines
  const onExit = () => {
    for (const c of children) if (!c.exit && c.pid) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  };
  process.on('exit', onExit);

  const start = (spec: ChildSpec): Child => {
    if (stopping) throw new Error('shutting down');
    const c = new Child(spec, commandFor(spec.kind));
    children.push(c);
    io.out(`started ${spec.name} (pid ${c.pid ?? '?'}) on port ${spec.port}, log: ${spec.logFile}`);
    void c.exited.then(() => {
      if (!stopping) {
        wake();
        rewake();
      }
    });
    return c;
  };
  const proxyHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const deadline = Date.now() + o.healthTimeoutMs;
  const ready = async (cs: Child[], host: string) => {
    // fail fast: the first child to exit or time out ends the wait
    await Promise.all(cs.map((c) => c.waitReady(host, deadline)));
  };
  const reportFailure = (c: Child, what: string) => {
    io.err(`ERROR: ${c.spec.name} ${what}. Last lines of ${c.spec.logFile}:`);
    const tail = tailFile(c.spec.logFile, 30);
    io.err(tail ? tail.split('\n').map((l) => `  | ${l}`).join('\n') : '  | (empty log)');
  };

  let code = 0;
  try {
    const startup = (async () => {
      if (plan.kvServer) await ready([start(plan.kvServer)], '127.0.0.1');
      if (signalled) return;
      const engines = plan.engines.map(start);
      await ready(engines, '127.0.0.1');
      if (signalled) return;
      await ready([start(plan.proxy)], proxyHost);
    })();
    const outcome = await Promise.race([startup.then(() => 'ready' as const, (e: Error) => e), woken.then(() => 'woken' as const)]);
    if (outcome instanceof Error || (outcome === 'woken' && !signalled)) {
      const dead = children.find((c) => c.exit);
      if (dead) reportFailure(dead, `exited during startup (${describeExit(dead.exit!)})`);
      else if (outcome instanceof Error) {
        io.err(`ERROR: ${outcome.message}`);
        const slow = children.find((c) => outcome.message.startsWith(c.spec.name));
        if (slow) reportFailure(slow, 'is not ready');
      }
      code = 1;
      return code;
    }
    if (signalled) return code;
    io.out(READY_LINE);
    io.out(`proxy: http://${proxyHost}:${proxyPort}  (${o.prefill} prefiller(s), ${o.decode} decoder(s); Ctrl+C stops all)`);
    const reported = new Set<Child>();
    for (;;) {
      const armed = nextWake();
      for (const d of children.filter((c) => c.exit && !reported.has(c))) {
        reported.add(d);
        reportFailure(d, `exited (${describeExit(d.exit!)})`);
      }
      if (signalled) break;
      if (children.some((c) => c.spec.kind === 'proxy' && c.exit)) {
        io.err('pdserve up: the proxy is gone; stopping');
        code = 1;
        break;
      }
      if (!children.some((c) => c.spec.kind === 'decoder' && !c.exit)) io.err('pdserve up: every decoder is gone: requests get 503 until you restart');
      else if (reported.size) io.err('pdserve up: continuing degraded (the proxy routes around dead servers)');
      await armed;
    }
    return code;
  } finally {
    stopping = true;
    // proxy first (no new requests), then engines, then the kv-server
    const tier = (k: ChildKind[]) => Promise.all(children.filter((c) => k.includes(c.spec.kind)).map((c) => c.stop(o.graceMs)));
    await tier(['proxy']);
    await tier(['prefiller', 'decoder']);
    await tier(['kv-server']);
    if (plan.kvServer) rmSync(o.kvPoolFile, { force: true });
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', onExit);
    io.out(`pdserve up: all servers stopped (logs in ${o.runDir})`);
  }
}
