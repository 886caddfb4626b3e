// Renders the chart with the real Helm and picks the rendered objects apart: `helm template`, `helm lint`,
// and the containers' command lines (command + args) of each Deployment.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

/** The repository root (this file is dist/src/deploy/render.js or src/deploy/render.ts). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', ...(fileURLToPath(import.meta.url).includes('/dist/') ? ['..'] : []));
export const chartDir = join(repoRoot, 'deploy', 'helm', 'pdserve');

export interface HelmRun {
  ok: boolean;
  stdout: string;
  stderr: string;
}

export interface RenderOptions {
  release?: string; // default "pd"
  namespace?: string; // default "default"
  valuesFiles?: string[];
  set?: string[]; // --set key=value
}

function helmArgs(o: RenderOptions): string[] {
  const a: string[] = [];
  for (const f of o.valuesFiles ?? []) a.push('-f', f);
  for (const s of o.set ?? []) a.push('--set', s);
  return a;
}

function run(helm: string, args: string[]): HelmRun {
  const r = spawnSync(helm, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HELM_CACHE_HOME: join(repoRoot, 'node_modules', '.cache', 'helm') } });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

export function helmTemplate(helm: string, o: RenderOptions = {}): HelmRun {
  return run(helm, ['template', o.release ?? 'pd', chartDir, '--namespace', o.namespace ?? 'default', ...helmArgs(o)]);
}

export function helmLint(helm: string, o: RenderOptions = {}): HelmRun {
  return run(helm, ['lint', '--strict', chartDir, '--namespace', o.namespace ?? 'default', ...helmArgs(o)]);
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: unknown }; [k: string]: unknown };

export function parseManifests(text: string): K8sObject[] {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => !!o && typeof o === 'object');
}

export interface ContainerCommand {
  deployment: string;
  component: string; // app.kubernetes.io/component of the Deployment
  container: string;
  init: boolean;
  argv: string[]; // command + args
  env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  replicas: number;
}

/** Every container (init ones too) of every Deployment, with its full argv. */
export function containerCommands(objs: K8sObject[]): ContainerCommand[] {
  const out: ContainerCommand[] = [];
  for (const o of objs) {
    if (o.kind !== 'Deployment') continue;
    const spec = o.spec as { replicas?: number; template: { spec: { containers: any[]; initContainers?: any[] } } };
    const labels = (o.metadata.labels ?? {}) as Record<string, string>;
    const add = (c: any, init: boolean) =>
      out.push({
        deployment: o.metadata.name,
        component: labels['app.kubernetes.io/component'] ?? '',
        container: c.name,
        init,
        argv: [...(c.command ?? []), ...(c.args ?? [])].map(String),
        env: c.env ?? [],
        replicas: spec.replicas ?? 1,
      });
    for (const c of spec.template.spec.initContainers ?? []) add(c, true);
    for (const c of spec.template.spec.containers) add(c, false);
  }
  return out;
}
