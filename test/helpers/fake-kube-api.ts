// A loopback stand-in for the Kubernetes API server: the list/watch subset @kubernetes/client-node's
// informer uses for pods. GET /api/v1/namespaces/NS/pods[?labelSelector=k=v] answers a PodList with a
// resourceVersion; with ?watch=true it streams one JSON line per event ({type: ADDED|MODIFIED|DELETED,
// object}) from then on. Only equality selectors (k=v, comma = and). NOT a real cluster.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakePod {
  name: string;
  labels: Record<string, string>;
  ip: string;
  ready: boolean;
}

export interface FakeKube {
  url: string;
  kubeconfigPath: string;
  /** query strings of every request seen (the test checks the selector reached the server) */
  requests: string[];
  upsert(p: FakePod): void;
  remove(name: string): void;
  close(): Promise<void>;
}

export async function startFakeKube(namespace: string): Promise<FakeKube> {
  const pods = new Map<string, FakePod>();
  let rv = 100;
  const watchers = new Set<{ res: ServerResponse; selector: string | null }>();
  const requests: string[] = [];
  const matches = (p: FakePod, sel: string | null) =>
    !sel || sel.split(',').every((term) => {
      const [k, v] = term.split('=');
      return p.labels[k!] === v;
    });
  const obj = (p: FakePod) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace, uid: `uid-${p.name}`, labels: p.labels, resourceVersion: String(rv) },
    status: { phase: 'Running', podIP: p.ip, conditions: [{ type: 'Ready', status: p.ready ? 'True' : 'False' }] },
  });
  const emit = (type: string, p: FakePod) => {
    rv++;
    for (const w of watchers) if (matches(p, w.selector)) w.res.write(JSON.stringify({ type, object: obj(p) }) + '\n');
  };
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push(`${req.method} ${u.pathname}${u.search}`);
    if (req.method !== 'GET' || u.pathname !== `/api/v1/namespaces/${namespace}/pods`) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: 'not found' }));
      return;
    }
    const selector = u.searchParams.get('labelSelector');
    if (u.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      const w = { res, selector };
      watchers.add(w);
      res.on('close', () => watchers.delete(w));
      return;
    }
    const items = [...pods.values()].filter((p) => matches(p, selector)).map(obj);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: String(rv) }, items }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'pds-kube-'));
  const kubeconfigPath = join(dir, 'config');
  writeFileSync(kubeconfigPath, [
    'apiVersion: v1', 'kind: Config', 'current-context: fake',
    'clusters:', '- name: fake', '  cluster:', `    server: ${url}`, '    insecure-skip-tls-verify: true', // plain http on loopback
    'users:', '- name: fake', '  user:', '    token: fake-token',
    'contexts:', '- name: fake', '  context:', '    cluster: fake', '    user: fake', `    namespace: ${namespace}`, '',
  ].join('\n'), { mode: 0o600 });
  return {
    url,
    kubeconfigPath,
    requests,
    upsert(p) {
      const type = pods.has(p.name) ? 'MODIFIED' : 'ADDED';
      pods.set(p.name, { ...p });
      emit(type, p);
    },
    remove(name) {
      const p = pods.get(name);
      if (!p) return;
      pods.delete(name);
      emit('DELETED', p);
    },
    async close() {
      for (const w of watchers) w.res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
