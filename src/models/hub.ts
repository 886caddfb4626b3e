// Hugging Face hub checkpoints in the standard cache layout (HF_HOME/hub/models--org--name/{refs,blobs,
// snapshots/<sha>}), shared with Python's huggingface_hub. A complete cached snapshot is reused without
// touching the network; otherwise only the files serving needs are fetched with @huggingface/hub.
// Env: HF_ENDPOINT (default https://huggingface.co), HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE.
import { downloadFileToCacheDir, listFiles, modelInfo } from '@huggingface/hub';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PdsError } from '../util/errors.js';
import { getLogger } from '../util/logger.js';
import { resolveLocalDir } from './local-dir.js';
import type { LoadFormat, ResolvedModel } from './types.js';

const log = getLogger('models');
const METADATA_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];
const METADATA_TIMEOUT_MS = 30_000;

/** "org/name" (letters, digits, '-', '_', '.'), as the hub accepts. */
export function isHubRepoId(arg: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(arg) && !arg.includes('..');
}

export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

/** hfHome (e.g. --hf-home) wins, then HF_HUB_CACHE, then HF_HOME/hub, then ~/.cache/huggingface/hub. */
export function hubCacheDir(hfHome?: string): string {
  if (hfHome) return join(hfHome, 'hub');
  if (process.env.HF_HUB_CACHE) return process.env.HF_HUB_CACHE;
  return join(process.env.HF_HOME || join(homedir(), '.cache', 'huggingface'), 'hub');
}

function repoFolder(cacheDir: string, repoId: string): string {
  return join(cacheDir, `models--${repoId.split('/').join('--')}`);
}

/** The cached snapshot of refs/main (or the only snapshot) when it has everything serving needs. */
export function cachedSnapshot(repoId: string, cacheDir: string, loadFormat: LoadFormat): string | null {
  const folder = repoFolder(cacheDir, repoId);
  const refPath = join(folder, 'refs', 'main');
  let snapshot: string | null = null;
  if (existsSync(refPath)) snapshot = join(folder, 'snapshots', readFileSync(refPath, 'utf8').trim());
  else if (existsSync(join(folder, 'snapshots'))) {
    const all = readdirSync(join(folder, 'snapshots'));
    if (all.length === 1) snapshot = join(folder, 'snapshots', all[0]!);
  }
  if (!snapshot || !existsSync(snapshot)) return null;
  try {
    resolveLocalDir(snapshot, loadFormat, repoId);
    return snapshot;
  } catch {
    return null;
  }
}

export interface HubOptions {
  loadFormat: LoadFormat;
  hfHome?: string;
}

/** Resolves "org/name": cache hit, else download (weights unless dummy). Name = the repo id. */
export async function resolveHubModel(repoId: string, opts: HubOptions): Promise<ResolvedModel> {
  const cacheDir = hubCacheDir(opts.hfHome);
  const hit = cachedSnapshot(repoId, cacheDir, opts.loadFormat);
  if (hit) {
    log.info(`Using cached ${repoId} from ${hit}`);
    return resolveLocalDir(hit, opts.loadFormat, repoId);
  }
  const endpoint = hubEndpoint();
  const fail = (reason: string) =>
    new PdsError('PDS_ERR_MODEL_LOAD', `cannot download ${repoId} from ${endpoint}: ${reason}; pass a local directory`);
  if (process.env.HF_HUB_OFFLINE === '1' || process.env.HF_HUB_OFFLINE?.toLowerCase() === 'true') {
    throw fail(`HF_HUB_OFFLINE is set and ${cacheDir} has no complete snapshot`);
  }
  let snapshot: string;
  try {
    snapshot = await downloadSnapshot(repoId, cacheDir, endpoint, opts.loadFormat !== 'dummy');
  } catch (e) {
    if (e instanceof PdsError) throw fail(e.message);
    throw fail(describeError(e));
  }
  return resolveLocalDir(snapshot, opts.loadFormat, repoId);
}

async function downloadSnapshot(repoId: string, cacheDir: string, endpoint: string, weights: boolean): Promise<string> {
  const accessToken = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined;
  const common = { hubUrl: endpoint, ...(accessToken ? { accessToken } : {}) };
  const timed: typeof fetch = (input, init) => fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(METADATA_TIMEOUT_MS) });

  const info = await modelInfo({ ...common, name: repoId, additionalFields: ['sha'], revision: 'main', fetch: timed });
  const sha = (info as { sha?: string }).sha;
  if (!sha) throw new PdsError('PDS_ERR_MODEL_LOAD', 'the hub did not report the commit of main');

  const names: string[] = [];
  for await (const entry of listFiles({ ...common, repo: repoId, revision: sha, fetch: timed })) {
    if (entry.type === 'file') names.push(entry.path);
  }
  if (!names.includes('config.json')) throw new PdsError('PDS_ERR_MODEL_LOAD', 'the repository has no config.json');
  if (!names.includes('tokenizer.json')) throw new PdsError('PDS_ERR_MODEL_LOAD', 'the repository has no tokenizer.json');
  const wanted = names.filter((n) => METADATA_FILES.includes(n));
  if (weights) {
    const shards = names.filter((n) => n.endsWith('.safetensors') || n === 'model.safetensors.index.json');
    if (!shards.some((n) => n.endsWith('.safetensors'))) throw new PdsError('PDS_ERR_MODEL_LOAD', 'the repository has no *.safetensors weights');
    wanted.push(...shards);
  }
  for (const path of wanted) {
    log.info(`Downloading ${repoId}/${path}`);
    await downloadFileToCacheDir({ ...common, repo: repoId, path, revision: sha, cacheDir });
  }
  const refPath = join(repoFolder(cacheDir, repoId), 'refs', 'main');
  await mkdir(join(refPath, '..'), { recursive: true });
  await writeFile(refPath, sha);
  return join(repoFolder(cacheDir, repoId), 'snapshots', sha);
}

/** "fetch failed (ECONNREFUSED 127.0.0.1:1)", "401 Unauthorized ...", ... */
function describeError(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string }; statusCode?: number };
  const status = typeof err.statusCode === 'number' ? `HTTP ${err.statusCode} ` : '';
  const cause = err.cause?.message ? ` (${err.cause.message})` : err.cause?.code ? ` (${err.cause.code})` : '';
  const hint = err.statusCode === 401 || err.statusCode === 403 ? ' (gated or private: set HF_TOKEN)' : '';
  return `${status}${err.message || String(e)}${cause}${hint}`;
}
