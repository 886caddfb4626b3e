// The real Helm for tests: helmOrSkip(t) gives the binary's path, or skips the test with one visible line
// (once per process) when it can't be extracted. render() runs `helm template` on the chart and throws with
// helm's stderr on failure.
import { join } from 'node:path';
import { helmBinary } from '../../src/deploy/helm-bin.js';
import { helmTemplate, parseManifests, repoRoot, type K8sObject, type RenderOptions } from '../../src/deploy/render.js';

export const examplesDir = join(repoRoot, 'examples', 'k8s');
export const exampleFiles = ['values-1p1d.yaml', 'values-xpyd.yaml'] as const;

let warned = false;
export function helmOrSkip(t: { skip: (msg?: string) => void }): string | null {
  const h = helmBinary();
  if ('path' in h) return h.path;
  if (!warned) {
    warned = true;
    console.log(`# helm unavailable (${h.skip}): skipping chart tests`);
  }
  t.skip(h.skip);
  return null;
}

export interface Rendered {
  text: string;
  objs: K8sObject[];
}

export function render(helm: string, o: RenderOptions): Rendered {
  const r = helmTemplate(helm, o);
  if (!r.ok) throw new Error(`helm template failed:\n${r.stderr}`);
  return { text: r.stdout, objs: parseManifests(r.stdout) };
}

export function byKind(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}
