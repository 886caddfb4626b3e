// --service-discovery k8s: engines are the pods of --k8s-namespace matching --k8s-label-selector, watched
// with the official client (@kubernetes/client-node: list, then watch from the list's resourceVersion;
// its informer re-lists on 410 Gone). A pod is an engine when it is Running, its Ready condition is
// True, it has a pod IP and is not being deleted; its URL is http://<pod IP>:--k8s-port, its model label
// the pod label --k8s-model-label-key ("model", as production-stack labels its engine pods), which
// --prefill-model-labels / --decode-model-labels map to a role. The router's own /health checks then
// eject and re-admit engines as for static backends. The API server is found as kubectl finds it
// (KUBECONFIG / ~/.kube/config, or the in-cluster service account).
// A watch that fails is restarted after a backoff (1 s doubling to 30 s); the last known pods stay in use.
import * as k8s from '@kubernetes/client-node';
import { getLogger } from '../util/logger.js';
import type { Backend } from './config.js';

const log = getLogger('router');

export interface K8sDiscoveryOptions {
  namespace: string;
  labelSelector: string | null;
  port: number;
  modelLabelKey: string;
  /** a KubeConfig already loaded (tests); default: loadFromDefault() */
  kubeConfig?: k8s.KubeConfig;
}

type Pod = k8s.V1Pod;

/** The engine a pod is, or null when it is not (yet) one. */
export function podBackend(pod: Pod, port: number, modelLabelKey: string): Backend | null {
  const ip = pod.status?.podIP;
  const ready = pod.status?.phase === 'Running' && (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  if (!ip || !ready || pod.metadata?.deletionTimestamp) return null;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { url: `http://${host}:${port}`, model: null, label: pod.metadata?.labels?.[modelLabelKey] ?? null, type: null };
}

export class K8sDiscovery {
  private readonly informer: k8s.Informer<Pod> & k8s.ObjectCache<Pod>;
  private stopped = false;
  private backoffMs = 1000;
  private retry: NodeJS.Timeout | null = null;
  private lastKey = '';
  /** watch (re)connections and failures, for /engines and tests */
  connects = 0;
  errors = 0;

  constructor(private readonly o: K8sDiscoveryOptions, private readonly onChange: (backends: Backend[]) => void) {
    const kc = o.kubeConfig ?? new k8s.KubeConfig();
    if (!o.kubeConfig) kc.loadFromDefault();
    const api = kc.makeApiClient(k8s.CoreV1Api);
    const labelSelector = o.labelSelector ?? undefined;
    const path = `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods`;
    this.informer = k8s.makeInformer(kc, path, () => api.listNamespacedPod({ namespace: o.namespace, ...(labelSelector ? { labelSelector } : {}) }), labelSelector);
    const changed = () => this.publish();
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', changed);
    this.informer.on('connect', () => {
      this.connects++;
    });
    this.informer.on('error', (err: unknown) => {
      this.errors++;
      if (this.stopped) return;
      log.warn(`k8s discovery: pod watch failed (${(err as Error)?.message ?? String(err)}); retrying in ${this.backoffMs / 1000} s, keeping ${this.backends().length} known engine(s)`);
      this.retry = setTimeout(() => void this.start().catch(() => undefined), this.backoffMs);
      this.retry.unref();
    });
  }

  backends(): Backend[] {
    const out: Backend[] = [];
    for (const pod of this.informer.list()) {
      const b = podBackend(pod, this.o.port, this.o.modelLabelKey);
      if (b && !out.some((x) => x.url === b.url)) out.push(b);
    }
    return out.sort((a, b) => a.url.localeCompare(b.url));
  }

  private publish(): void {
    const bs = this.backends();
    const key = bs.map((b) => `${b.url}=${b.label ?? ''}`).join(',');
    if (key === this.lastKey) return;
    this.lastKey = key;
    log.info(`k8s discovery: ${bs.length} ready engine pod(s): ${bs.map((b) => `${b.url}${b.label ? ` (${b.label})` : ''}`).join(', ') || 'none'}`);
    this.onChange(bs);
  }

  /** Lists, then watches; resolves after the first list (rejects when it fails: the caller may go on, retries follow). */
  async start(): Promise<void> {
    const errors = this.errors;
    await this.informer.start();
    // a list that worked resets the backoff; one that failed doubles it (its retry is already scheduled)
    this.backoffMs = this.errors === errors ? 1000 : Math.min(30_000, this.backoffMs * 2);
    this.publish();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.informer.stop().catch(() => undefined);
  }
}
