// One call from a model directory to a ready NativeModel: config.json -> spec, create on the device,
// then safetensors weights or seeded dummy weights.
import { readJsonObjectAsync } from '../../util/json-file.js';
import { join } from 'node:path';
import { buildPath, loadNative } from '../../native/binding.js';
import type { DType, NativeModel } from '../../native/binding.js';
import { parseModelConfig, type ModelConfig } from './model-config.js';
import { listCheckpointTensors, type TensorInfo } from './safetensors.js';
import { loadWeights } from './load-weights.js';

export interface LoadModelOptions {
  /** Directory holding config.json (and the weights unless dummy). */
  dir: string;
  /** Parsed config.json; read from dir when absent. */
  config?: Record<string, unknown>;
  weights: 'safetensors' | 'dummy';
  device?: string;
  threads?: number;
  /** Weight dtype kept in memory; default: the checkpoint dtype. */
  weightDtype?: DType;
  dummySeed?: number;
}

export interface LoadedModel {
  model: NativeModel;
  config: ModelConfig;
}

export async function loadModel(o: LoadModelOptions): Promise<LoadedModel> {
  const raw = o.config ?? (await readJsonObjectAsync(join(o.dir, 'config.json')));
  let tensors: TensorInfo[] = [];
  if (o.weights === 'safetensors') tensors = await listCheckpointTensors(o.dir);
  const hasLmHead = o.weights === 'safetensors' ? tensors.some((t) => t.name === 'lm_head.weight') : undefined;
  const config = parseModelConfig(raw, { weightDtype: o.weightDtype, hasLmHead });
  const device = o.device ?? 'cpu';
  const native = loadNative();
  const model = native.createModel(config.spec, {
    device,
    threads: o.threads ?? 0,
    cudaLibPath: device.startsWith('cuda') ? buildPath('pdserve_cuda.so') : undefined,
  });
  try {
    if (o.weights === 'dummy') {
      model.initDummyWeights(o.dummySeed ?? 0);
      model.finalizeWeights();
    } else {
      loadWeights(model, tensors, { tied: config.spec.tieWordEmbeddings });
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, config };
}
