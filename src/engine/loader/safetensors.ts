// safetensors checkpoints: header parsing (8-byte LE length + JSON), validated against the file size,
// and sharded checkpoints (model.safetensors.index.json weight_map). Reads only headers, never tensor data.
import { open, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { readJsonObjectAsync } from '../../util/json-file.js';
import { join } from 'node:path';
import { PdsError } from '../../util/errors.js';
import { safetensorsDtypeBytes as dtypeBytes } from '../../util/dtype.js';

const maxHeaderBytes = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  /** safetensors dtype string, e.g. "BF16". */
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  nbytes: number;
  file: string;
}

export class SafetensorsError extends PdsError {
  constructor(file: string, problem: string) {
    super('PDS_ERR_MODEL_LOAD', `invalid safetensors file ${file}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

/** Parses and validates the header of one .safetensors file. */
export async function readSafetensorsHeader(file: string): Promise<TensorInfo[]> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size < 8) throw new SafetensorsError(file, `file is ${size} bytes, too short for a header`);
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const len = lenBuf.readBigUInt64LE(0);
    if (len < 2n || len > BigInt(Math.min(maxHeaderBytes, size - 8)))
      throw new SafetensorsError(file, `header length ${len} does not fit the file size ${size}`);
    const n = Number(len);
    const hb = Buffer.alloc(n);
    const { bytesRead } = await fh.read(hb, 0, n, 8);
    if (bytesRead !== n) throw new SafetensorsError(file, 'header truncated');
    let header: unknown;
    try {
      header = JSON.parse(hb.toString('utf8'));
    } catch (e) {
      throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      throw new SafetensorsError(file, 'header is not a JSON object');
    const dataStart = 8 + n;
    const dataLen = size - dataStart;
    const out: TensorInfo[] = [];
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== 'object' || e === null) throw new SafetensorsError(file, `entry '${name}' is not an object`);
      if (typeof e.dtype !== 'string' || !(e.dtype in dtypeBytes))
        throw new SafetensorsError(file, `tensor '${name}' has unknown dtype ${JSON.stringify(e.dtype)}`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw new SafetensorsError(file, `tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
      const offs = e.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1])
        throw new SafetensorsError(file, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
      if (offs[1] > dataLen)
        throw new SafetensorsError(file, `tensor '${name}' data [${offs[0]}, ${offs[1]}) lies past the end of the file (${dataLen} data bytes)`);
      const shape = e.shape as number[];
      const nbytes = shape.reduce((a, b) => a * b, 1) * dtypeBytes[e.dtype];
      if (nbytes !== offs[1] - offs[0])
        throw new SafetensorsError(file, `tensor '${name}' is ${offs[1] - offs[0]} bytes but shape ${JSON.stringify(shape)} x ${e.dtype} needs ${nbytes}`);
      out.push({ name, dtype: e.dtype, shape, offset: dataStart + offs[0], nbytes, file });
    }
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * All tensors of a checkpoint directory: the shards named by model.safetensors.index.json when present,
 * else model.safetensors, else every *.safetensors file. Throws when none exist or a name repeats.
 */
export async function listCheckpointTensors(dir: string): Promise<TensorInfo[]> {
  let files: string[];
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const parsed = (await readJsonObjectAsync(index)) as { weight_map?: Record<string, string> };
    if (!parsed.weight_map || typeof parsed.weight_map !== 'object') throw new PdsError('PDS_ERR_MODEL_LOAD', `invalid ${index}: no weight_map`);
    files = [...new Set(Object.values(parsed.weight_map))].map((f) => join(dir, f));
  } else if (existsSync(join(dir, 'model.safetensors'))) {
    files = [join(dir, 'model.safetensors')];
  } else {
    const all = existsSync(dir) && (await stat(dir)).isDirectory() ? await readdir(dir) : [];
    files = all.filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(dir, f));
  }
  if (!files.length) throw new PdsError('PDS_ERR_MODEL_LOAD', `no .safetensors weights found in ${dir}`);
  const seen = new Set<string>();
  const out: TensorInfo[] = [];
  for (const f of files) {
    if (!existsSync(f)) throw new PdsError('PDS_ERR_MODEL_LOAD', `checkpoint shard ${f} is missing`);
    for (const t of await readSafetensorsHeader(f)) {
      if (seen.has(t.name)) throw new PdsError('PDS_ERR_MODEL_LOAD', `tensor '${t.name}' appears twice in the checkpoint ${dir}`);
      seen.add(t.name);
      out.push(t);
    }
  }
  return out;
}
