// production-stack's dynamic config: --dynamic-config-json FILE | --dynamic-config-yaml FILE, a file of
// router settings the router reads at start (over the command line's) and re-reads every
// --dynamic-config-interval seconds (production-stack: 10), applying it when its content changed.
// A file that cannot be read, parsed or validated is logged and the running config kept.
// Fields (production-stack's names; values as the flags take them, lists as comma strings or arrays):
//   service_discovery, routing_logic, session_key, static_backends, static_models, static_model_labels,
//   static_model_types, prefill_model_labels, decode_model_labels, k8s_namespace, k8s_label_selector,
//   k8s_port, and pdserve's prefill_policy, decode_policy. Other fields are ignored with a warning.
// What may change at run time is checked by the router's reconfigure() (server.ts).
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import YAML from 'yaml';
import { PdsError } from '../util/errors.js';
import { getLogger } from '../util/logger.js';

const log = getLogger('router');
const MAX_BYTES = 1024 * 1024;

/** The file's settings under the CLI's flag names (camelCase), ready to lay over the parsed flags. */
export type DynamicFlags = Record<string, string | number>;

const stringFields: Record<string, string> = {
  service_discovery: 'serviceDiscovery', routing_logic: 'routingLogic', session_key: 'sessionKey',
  static_backends: 'staticBackends', static_models: 'staticModels', static_model_labels: 'staticModelLabels',
  static_model_types: 'staticModelTypes', prefill_model_labels: 'prefillModelLabels', decode_model_labels: 'decodeModelLabels',
  k8s_namespace: 'k8sNamespace', k8s_label_selector: 'k8sLabelSelector', prefill_policy: 'prefillPolicy', decode_policy: 'decodePolicy',
};
const listFields = new Set(['static_backends', 'static_models', 'static_model_labels', 'static_model_types', 'prefill_model_labels', 'decode_model_labels']);

/** Parses and type-checks one file's text (format by flag: json or yaml). Throws PdsError on anything odd. */
export function parseDynamicConfig(text: string, format: 'json' | 'yaml'): DynamicFlags {
  let doc: unknown;
  try {
    doc = format === 'json' ? JSON.parse(text) : YAML.parse(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new PdsError('PDS_ERR_CONFIG', `not valid ${format.toUpperCase()}: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new PdsError('PDS_ERR_CONFIG', 'the dynamic config must be an object of settings');
  const out: DynamicFlags = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (k === 'k8s_port') {
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw new PdsError('PDS_ERR_CONFIG', `k8s_port must be a port number, got ${JSON.stringify(v)}`);
      out.k8sPort = v as number;
      continue;
    }
    const flag = stringFields[k];
    if (!flag) {
      log.warn(`dynamic config: field '${k}' is not supported here; ignored`);
      continue;
    }
    if (listFields.has(k) && Array.isArray(v) && v.every((x) => typeof x === 'string' && !x.includes(','))) out[flag] = v.join(',');
    else if (typeof v === 'string') out[flag] = v;
    else throw new PdsError('PDS_ERR_CONFIG', `${k} must be a string${listFields.has(k) ? ' (comma list) or an array of strings' : ''}, got ${JSON.stringify(v)}`);
  }
  if (typeof out.routingLogic !== 'string') throw new PdsError('PDS_ERR_CONFIG', 'the dynamic config needs routing_logic');
  return out;
}

async function readBounded(path: string): Promise<{ buf: Buffer; digest: string }> {
  const st = await stat(path);
  if (!st.isFile()) throw new PdsError('PDS_ERR_CONFIG', `${path} is not a file`);
  if (st.size > MAX_BYTES) throw new PdsError('PDS_ERR_CONFIG', `${path} is larger than ${MAX_BYTES} bytes`);
  const buf = await readFile(path);
  if (buf.length > MAX_BYTES) throw new PdsError('PDS_ERR_CONFIG', `${path} is larger than ${MAX_BYTES} bytes`);
  return { buf, digest: createHash('sha256').update(buf).digest('hex') };
}

export async function readDynamicConfig(path: string, format: 'json' | 'yaml'): Promise<{ flags: DynamicFlags; digest: string }> {
  const { buf, digest } = await readBounded(path);
  return { flags: parseDynamicConfig(buf.toString('utf8'), format), digest };
}

/** Re-reads the file every intervalMs; a changed content goes to apply() (which throws to refuse it). */
export class DynamicConfigWatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** content digest of the last file seen (applied or refused: a refused file is not retried until it changes) */
  private seen: string;
  private lastError = '';

  constructor(
    private readonly path: string,
    private readonly format: 'json' | 'yaml',
    private readonly intervalMs: number,
    private readonly apply: (flags: DynamicFlags) => void,
    initialDigest: string,
  ) {
    this.seen = initialDigest;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  check(): Promise<void> {
    this.running ??= (async () => {
      let digest: string | null = null;
      try {
        const got = await readBounded(this.path);
        digest = got.digest;
        if (digest === this.seen) return;
        const flags = parseDynamicConfig(got.buf.toString('utf8'), this.format);
        this.apply(flags);
        this.lastError = '';
        log.info(`dynamic config ${this.path} applied (routing logic ${String(flags.routingLogic)}${flags.staticBackends ? `, backends ${String(flags.staticBackends)}` : ''})`);
      } catch (e) {
        const msg = (e as Error).message;
        if (msg !== this.lastError) log.error(`dynamic config ${this.path} not applied, the running config is kept: ${msg}`);
        this.lastError = msg;
      } finally {
        if (digest) this.seen = digest;
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
