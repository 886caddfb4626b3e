// Runs a rendered chart's Deployments as local processes on loopback: "the commands the chart runs are the
// commands we test". What a cluster would provide is played here, and nothing else is changed:
//  - each Service gets a free 127.0.0.1 port; the one Deployment it selects listens there (its --port
//    <containerPort> becomes that port, --host 0.0.0.0 becomes 127.0.0.1), and "<service>:<servicePort>"
//    in args, env and ConfigMap files becomes "127.0.0.1:<port>";
//  - volumes become directories: ConfigMap and Secret volumes are written from the rendered objects (Secret
//    items with their defaultMode), emptyDir and PVC ones are empty; args and env under a mountPath point
//    into them;
//  - init containers run for real (only coreutils `install` is allowed: the chart's secret copy);
//  - `pdserve` is this checkout's dist/src/cli/main.js;
//  - the router's --service-discovery k8s (pods watched through the API server) is played by listing the
//    rendered engine pod templates that match --k8s-label-selector, as --service-discovery static with each
//    pod's `model` label; --k8s-port must be the engines' containerPort.
// Readiness comes from each container's readinessProbe (httpGet path or tcpSocket).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { containerCommands, type ContainerCommand, type K8sObject } from '../../src/deploy/render.js';
import { cliPath } from './fixtures.js';
import { freePort } from './spawn-server.js';

type Labels = Record<string, string>;

interface PodSpec {
  containers: any[];
  initContainers?: any[];
  volumes?: any[];
}

export interface LocalProcess {
  deployment: string;
  component: string;
  port: number; // the loopback port it listens on
  argv: string[]; // as run: [node, main.js, ...]
  env: Record<string, string>;
  probe: { http?: string; tcp?: boolean };
}

export interface LocalPlan {
  /** "<service>" -> loopback port */
  services: Map<string, number>;
  processes: LocalProcess[];
}

const matches = (selector: Labels, labels: Labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);

function podOf(d: K8sObject): { labels: Labels; spec: PodSpec } {
  const t = (d.spec as { template: { metadata: { labels: Labels }; spec: PodSpec } }).template;
  return { labels: t.metadata.labels, spec: t.spec };
}

/** Lays out volumes, runs init containers, rewrites commands. `root` is an empty scratch directory. */
/** `ports` pins some Services to given ports (another plan's processes that already listen there). */
export async function planLocal(objs: K8sObject[], root: string, ports: Map<string, number> = new Map()): Promise<LocalPlan> {
  const deployments = objs.filter((o) => o.kind === 'Deployment');
  const byName = (kind: string, name: string) => {
    const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) throw new Error(`the render has no ${kind} ${name}`);
    return o;
  };
  // Services -> ports; the Deployment each selects listens on it
  const services = new Map<string, number>();
  const hostRewrites: Array<[string, string]> = [];
  const portOf = new Map<string, number>(); // deployment -> loopback port
  for (const s of objs.filter((o) => o.kind === 'Service')) {
    const spec = s.spec as { selector: Labels; ports: Array<{ port: number }> };
    const targets = deployments.filter((d) => matches(spec.selector, podOf(d).labels));
    if (targets.length !== 1) throw new Error(`Service ${s.metadata.name} selects ${targets.length} Deployments`);
    const d = targets[0]!.metadata.name;
    const port = ports.get(s.metadata.name) ?? portOf.get(d) ?? (await freePort());
    portOf.set(d, port);
    services.set(s.metadata.name, port);
    for (const p of spec.ports) hostRewrites.push([`${s.metadata.name}:${p.port}`, `127.0.0.1:${port}`]);
  }
  const rewriteHosts = (v: string) => hostRewrites.reduce((acc, [from, to]) => acc.split(from).join(to), v);

  const processes: LocalProcess[] = [];
  const commands = containerCommands(objs);
  for (const d of deployments) {
    const name = d.metadata.name;
    const replicas = (d.spec as { replicas?: number }).replicas ?? 1;
    if (replicas !== 1) throw new Error(`${name}: replicas ${replicas}; the local plan runs one of each`);
    const pod = podOf(d);
    const port = portOf.get(name);
    if (port === undefined) throw new Error(`${name}: no Service selects it`);
    // volumes -> directories
    const volDir = new Map<string, string>();
    for (const v of pod.spec.volumes ?? []) {
      const dir = join(root, name, v.name);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      volDir.set(v.name, dir);
      if (v.configMap) {
        for (const [k, text] of Object.entries((byName('ConfigMap', v.configMap.name).data ?? {}) as Record<string, string>)) writeFileSync(join(dir, k), rewriteHosts(text));
      } else if (v.secret) {
        const data = (byName('Secret', v.secret.secretName).data ?? {}) as Record<string, string>;
        const items: Array<{ key: string; path: string }> = v.secret.items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
        for (const it of items) {
          if (data[it.key] === undefined) throw new Error(`${name}: Secret ${v.secret.secretName} has no key ${it.key}`);
          const f = join(dir, it.path);
          writeFileSync(f, Buffer.from(data[it.key]!, 'base64'));
          chmodSync(f, v.secret.defaultMode ?? 0o644);
        }
      } else if (!v.emptyDir && !v.persistentVolumeClaim) {
        throw new Error(`${name}: volume ${v.name} (${Object.keys(v).join(',')}) has no local stand-in`);
      }
    }
    const mine = commands.filter((c) => c.deployment === name);
    const containerSpec = (c: ContainerCommand) => [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((x) => x.name === c.container);
    const mapPaths = (c: ContainerCommand) => {
      const mounts = [...(containerSpec(c).volumeMounts ?? [])].sort((a: any, b: any) => b.mountPath.length - a.mountPath.length);
      return (v: string) => {
        const m = mounts.find((x: any) => v === x.mountPath || v.startsWith(x.mountPath + '/'));
        return m ? volDir.get(m.name)! + v.slice(m.mountPath.length) : v;
      };
    };
    for (const c of mine.filter((x) => x.init)) {
      if (c.argv[0] !== 'install') throw new Error(`${name}: init container ${c.container} runs ${c.argv[0]}, not install`);
      const argv = c.argv.map(mapPaths(c));
      mkdirSync(dirname(argv[argv.length - 1]!), { recursive: true });
      execFileSync(argv[0]!, argv.slice(1), { stdio: 'pipe', timeout: 10_000 });
    }
    const main = mine.filter((x) => !x.init);
    if (main.length !== 1) throw new Error(`${name}: ${main.length} containers`);
    const c = main[0]!;
    const cs = containerSpec(c);
    const containerPort: number = cs.ports[0].containerPort;
    const paths = mapPaths(c);
    let args = c.argv.slice(1).map((a) => rewriteHosts(paths(a)));
    if (c.argv[0] !== 'pdserve') throw new Error(`${name}: runs ${c.argv[0]}, not pdserve`);
    args = replaceFlag(args, '--host', '0.0.0.0', '127.0.0.1');
    args = replaceFlag(args, '--port', String(containerPort), String(port));
    const env: Record<string, string> = {};
    for (const e of c.env) {
      if (e.value !== undefined) env[e.name] = rewriteHosts(paths(e.value));
      else {
        const ref = (e.valueFrom as { secretKeyRef?: { name: string; key: string } }).secretKeyRef;
        if (!ref) throw new Error(`${name}: env ${e.name} has no local stand-in`);
        const data = (byName('Secret', ref.name).data ?? {}) as Record<string, string>;
        env[e.name] = Buffer.from(data[ref.key]!, 'base64').toString('utf8');
      }
    }
    const rp = cs.readinessProbe ?? {};
    processes.push({ deployment: name, component: c.component, port, argv: [process.execPath, cliPath, ...args], env, probe: { http: rp.httpGet?.path, tcp: !!rp.tcpSocket } });
  }
  for (const p of processes) if (p.argv[2] === 'router') p.argv = playK8sDiscovery(p.argv, deployments, portOf);
  return { services, processes };
}

/** args with `flag from` replaced by `flag to`; throws if the flag is absent or has another value. */
function replaceFlag(args: string[], flag: string, from: string, to: string): string[] {
  const i = args.indexOf(flag);
  if (i < 0 || args[i + 1] !== from) throw new Error(`expected ${flag} ${from} in ${args.join(' ')}`);
  return [...args.slice(0, i + 1), to, ...args.slice(i + 2)];
}

function takeFlag(argv: string[], flag: string): [string, string[]] {
  const i = argv.indexOf(flag);
  if (i < 0) throw new Error(`router command has no ${flag}`);
  return [argv[i + 1]!, [...argv.slice(0, i), ...argv.slice(i + 2)]];
}

/** --service-discovery k8s -> static, from the rendered engine pods the selector matches. */
function playK8sDiscovery(argv: string[], deployments: K8sObject[], portOf: Map<string, number>): string[] {
  let rest = argv;
  let kind: string, selector: string, k8sPort: string;
  [kind, rest] = takeFlag(rest, '--service-discovery');
  if (kind !== 'k8s') return argv;
  [, rest] = takeFlag(rest, '--k8s-namespace');
  [selector, rest] = takeFlag(rest, '--k8s-label-selector');
  [k8sPort, rest] = takeFlag(rest, '--k8s-port');
  const sel = Object.fromEntries(selector.split(',').map((kv) => kv.split('=') as [string, string]));
  const pods = deployments.filter((d) => matches(sel, podOf(d).labels));
  if (!pods.length) throw new Error(`--k8s-label-selector ${selector} matches no engine pod`);
  for (const d of pods) {
    const port = podOf(d).spec.containers[0].ports[0].containerPort;
    if (String(port) !== k8sPort) throw new Error(`--k8s-port ${k8sPort} but ${d.metadata.name} listens on ${port}`);
  }
  const labels = pods.map((d) => podOf(d).labels.model ?? '');
  if (labels.some((l) => !l)) throw new Error('an engine pod has no model label');
  return [
    ...rest,
    '--service-discovery', 'static',
    '--static-backends', pods.map((d) => `http://127.0.0.1:${portOf.get(d.metadata.name)}`).join(','),
    '--static-model-labels', labels.join(','),
  ];
}

export interface Running {
  proc: ChildProcess;
  spec: LocalProcess;
  logs(): string;
}

async function probeOnce(p: LocalProcess): Promise<boolean> {
  if (p.probe.http) {
    try {
      return (await fetch(`http://127.0.0.1:${p.port}${p.probe.http}`)).status === 200;
    } catch {
      return false;
    }
  }
  return new Promise((resolve) => {
    const s = connect(p.port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Starts one process and waits (bounded) until its readiness probe passes. */
export async function startLocal(p: LocalProcess, timeoutMs = 90_000): Promise<Running> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(PDSERVE_|VLLM_API_KEY$|HF_)/.test(k)) env[k] = v;
  const proc = spawn(p.argv[0]!, p.argv.slice(1), { env: { ...env, ...p.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const r: Running = { proc, spec: p, logs: () => out };
  const end = Date.now() + timeoutMs;
  while (!(await probeOnce(p))) {
    if (proc.exitCode !== null || Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`${p.deployment} (${p.argv.slice(2).join(' ')}) did not become ready:\n${out.slice(-3000)}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return r;
}

export async function stopLocal(rs: Running[]): Promise<void> {
  await Promise.all(
    rs.map(async (r) => {
      if (r.proc.exitCode !== null || r.proc.signalCode !== null) return;
      const exited = new Promise((res) => r.proc.once('exit', res));
      r.proc.kill('SIGTERM');
      const t = setTimeout(() => r.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }),
  );
}
