// KV layer config: LMCache's field names (anchors §3), validated once here.
// Sources, later wins: defaults < YAML file (--kv-config, else env PDSERVE_KV_CONFIG_FILE) <
// env PDSERVE_KV_<FIELD> (upper-case field name; the value is parsed as a YAML scalar, so `true`, `5`, `0.5`
// and `pdkv://h:1` all work; PDSERVE_KV_EXTRA_CONFIG takes a YAML/JSON mapping).
// An unknown field (in the file, in extra_config, or as a PDSERVE_KV_* variable) or a bad value throws
// PdsError('PDS_ERR_CONFIG') whose message and `param` name the field.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { PdsError } from '../util/errors.js';

const extraConfigSchema = z
  .object({
    /** Seconds between retries of a remote lookup/connect while the kv-server is unreachable. */
    lookup_backoff_time: z.number().positive().default(0.5),
    /** Seconds a single kv-server request may take before it fails (lookups then count as misses). */
    remote_timeout_secs: z.number().positive().default(5),
    /** How remote chunks move: shm = map the pool file (same host), tcp = PUT/GET bytes, auto = shm if possible. */
    remote_transport: z.enum(['auto', 'shm', 'tcp']).default('auto'),
    /** Accepted for LMCache/Maru config compatibility; pdserve keeps no per-chunk metadata file. */
    save_chunk_meta: z.boolean().default(false),
  })
  .strict();

export const kvConfigSchema = z
  .object({
    /** Tokens per KV chunk; a multiple of the engine's block size (checked at registerKvCache). */
    chunk_size: z.number().int().positive().default(256),
    local_cpu: z.boolean().default(true),
    /** GB of host RAM for the local CPU tier (binary GB = 2^30 bytes, as LMCache counts). */
    max_local_cpu_size: z.number().nonnegative().default(5),
    /** Directory of the local disk tier (`file:///path/` or a plain path); null = no disk tier. */
    local_disk: z.string().min(1).nullable().default(null),
    /** GB (2^30 bytes) of disk for local_disk. */
    max_local_disk_size: z.number().nonnegative().default(0),
    /** `pdkv://host:port` of a `pdserve kv-server`; null = no remote tier. */
    remote_url: z
      .string()
      .regex(/^pdkv:\/\/[^\s/:]+:\d{1,5}\/?$/, 'must look like pdkv://host:port')
      .nullable()
      .default(null),
    /** Store the last partial chunk of a prompt too (LMCache default false; PD needs it for short prompts). */
    save_unfull_chunk: z.boolean().default(true),
    /** Upper bound (s) on a consumer's lookup + load; past it the engine recomputes. */
    blocking_timeout_secs: z.number().positive().default(10),
    /** Hits shorter than this many tokens are ignored (recomputed instead). */
    min_retrieve_tokens: z.number().int().nonnegative().default(0),
    /**
     * How KV moves from a prefiller to a decoder: pool = through the kv-server (remote_url); cuda_ipc = the
     * decoder copies the prefiller's blocks GPU to GPU (same host), the pool path remaining the fallback.
     */
    transfer_channel: z.enum(['pool', 'cuda_ipc']).default('pool'),
    extra_config: extraConfigSchema.default(() => extraConfigSchema.parse({})),
  })
  .strict();

export type KvConfigInput = z.input<typeof kvConfigSchema>;
export type KvConfigFields = z.output<typeof kvConfigSchema>;

/** The KV layer's defaults, from the schema only (`up --chunk-size` shows chunk_size). */
export const kvConfigDefaults: Readonly<KvConfigFields> = kvConfigSchema.parse({});

/** The validated config plus derived values. */
export interface KvConfig extends KvConfigFields {
  maxLocalCpuBytes: number;
  /** The disk tier's directory and byte budget, when local_disk is set. */
  disk: { dir: string; capacityBytes: number } | null;
  remote: { host: string; port: number } | null;
}

const ENV_PREFIX = 'PDSERVE_KV_';
const ENV_FILE = 'PDSERVE_KV_CONFIG_FILE';

function configError(field: string, message: string): PdsError {
  return new PdsError('PDS_ERR_CONFIG', `kv config: ${field}: ${message}`, field);
}

/** Validates a plain object (file contents merged with overrides) into a KvConfig. */
export function parseKvConfig(input: unknown): KvConfig {
  const r = kvConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    let field = issue.path.join('.');
    let msg = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      field = [...issue.path, keys[0]].join('.');
      msg = `unknown field (known: ${Object.keys(issue.path.length ? extraConfigSchema.shape : kvConfigSchema.shape).join(', ')})`;
    }
    throw configError(field || '(root)', msg);
  }
  const c = r.data;
  let remote: KvConfig['remote'] = null;
  if (c.remote_url) {
    const m = /^pdkv:\/\/([^\s/:]+):(\d+)\/?$/.exec(c.remote_url)!;
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw configError('remote_url', `port ${port} out of range`);
    remote = { host: m[1]!, port };
  }
  let disk: KvConfig['disk'] = null;
  if (c.local_disk) {
    const dir = c.local_disk.startsWith('file://') ? c.local_disk.slice('file://'.length) : c.local_disk;
    if (!dir) throw configError('local_disk', 'empty path');
    if (!(c.max_local_disk_size > 0)) throw configError('max_local_disk_size', 'must be > 0 when local_disk is set');
    disk = { dir, capacityBytes: Math.floor(c.max_local_disk_size * 2 ** 30) };
  }
  return { ...c, maxLocalCpuBytes: Math.floor(c.max_local_cpu_size * 2 ** 30), remote, disk };
}

/** PDSERVE_KV_<FIELD> variables as a partial config object (values parsed as YAML scalars). */
export function envOverrides(env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const known = new Set(Object.keys(kvConfigSchema.shape));
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === ENV_FILE || raw === undefined) continue;
    const field = name.slice(ENV_PREFIX.length).toLowerCase();
    if (!known.has(field)) throw configError(name, `unknown kv config variable (fields: ${[...known].join(', ')})`);
    let value: unknown;
    try {
      value = YAML.parse(raw);
    } catch {
      value = raw;
    }
    if (field === 'remote_url' && (raw === '' || raw.toLowerCase() === 'none')) value = null;
    out[field] = value;
  }
  return out;
}

/** Loads the config: file (path arg, else PDSERVE_KV_CONFIG_FILE, else none) then env overrides. */
export function loadKvConfig(path?: string | null, env: NodeJS.ProcessEnv = process.env): KvConfig {
  const file = path || env[ENV_FILE] || null;
  let base: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new PdsError('PDS_ERR_CONFIG', `kv config: cannot read ${file}: ${(e as Error).message}`, 'kv-config');
    }
    let doc: unknown;
    try {
      doc = YAML.parse(text);
    } catch (e) {
      throw new PdsError('PDS_ERR_CONFIG', `kv config: ${file} is not valid YAML: ${(e as Error).message}`, 'kv-config');
    }
    if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc)))
      throw new PdsError('PDS_ERR_CONFIG', `kv config: ${file} must be a YAML mapping`, 'kv-config');
    base = (doc ?? {}) as Record<string, unknown>;
  }
  const over = envOverrides(env);
  const merged: Record<string, unknown> = { ...base, ...over };
  if (over.extra_config && typeof over.extra_config === 'object' && base.extra_config && typeof base.extra_config === 'object')
    merged.extra_config = { ...(base.extra_config as object), ...(over.extra_config as object) };
  return parseKvConfig(merged);
}

