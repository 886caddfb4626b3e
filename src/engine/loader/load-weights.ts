// Streams every checkpoint tensor into a NativeModel (native pread, never through the JS heap).
import type { NativeModel } from '../../native/binding.js';
import type { TensorInfo } from './safetensors.js';
import { PdsError } from '../../util/errors.js';
import { dtypeFromSafetensors } from '../../util/dtype.js';

/** Buffers that HF checkpoints sometimes carry but the model recomputes. */
export function isSkippedTensor(name: string): boolean {
  return name.endsWith('rotary_emb.inv_freq');
}

/**
 * Loads all tensors then finalizes (which throws naming the first missing weight). With tied embeddings a
 * stored lm_head.weight is ignored (HF ties it to embed_tokens the same way).
 */
export function loadWeights(model: NativeModel, tensors: TensorInfo[], opts: { tied: boolean }): void {
  for (const t of tensors) {
    if (isSkippedTensor(t.name) || (opts.tied && t.name === 'lm_head.weight')) continue;
    const dt = dtypeFromSafetensors(t.dtype);
    if (!dt) throw new PdsError('PDS_ERR_MODEL_LOAD', `tensor '${t.name}' in ${t.file} has dtype ${t.dtype}; only F32, F16 and BF16 weights are supported`);
    model.loadTensor(t.name, t.file, t.offset, t.nbytes, dt, t.shape);
  }
  model.finalizeWeights();
}
