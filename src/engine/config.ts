// One config type for the engine, validated once; derived values computed here.
import { z } from 'zod';
import { PdsError } from '../util/errors.js';
import { DTYPES } from '../util/dtype.js';

export const engineConfigSchema = z
  .object({
    device: z.string().regex(/^(cpu|cuda(:\d+)?)$/, 'device must be cpu, cuda or cuda:N').default('cpu'),
    threads: z.number().int().min(0).default(0), // CPU threads; 0 = all cores
    blockSize: z.number().int().positive().max(256).default(16),
    maxNumBatchedTokens: z.number().int().positive().default(2048),
    maxNumSeqs: z.number().int().positive().default(64),
    maxModelLen: z.number().int().positive().optional(), // default: the model's max_position_embeddings
    enablePrefixCaching: z.boolean().default(true),
    kvCacheDtype: z.enum(['auto', ...DTYPES]).default('auto'),
    kvCacheMemory: z.number().int().positive().optional(), // bytes; overrides the fraction below
    gpuMemoryUtilization: z.number().gt(0).max(1).default(0.9), // cuda: the KV pool gets this fraction of the memory left after the weights
    cpuKvFraction: z.number().gt(0).max(1).default(0.25), // cpu: fraction of MemAvailable for the KV pool (capped at 4 GiB)
    seed: z.number().int().default(0),
    weightDtype: z.enum(['auto', ...DTYPES]).default('auto'),
  })
  .strict();

export type EngineConfigInput = z.input<typeof engineConfigSchema>;
export type EngineConfig = z.output<typeof engineConfigSchema>;

export function parseEngineConfig(input: EngineConfigInput): EngineConfig {
  const r = engineConfigSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new PdsError('PDS_ERR_CONFIG', `invalid engine option ${issue.path.join('.')}: ${issue.message}`, issue.path.join('.'));
  }
  return r.data;
}
