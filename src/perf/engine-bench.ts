// `pdserve bench engine`: the native forward pass alone (no server), with the machine's measured limits
// in the same run so the figures come with ratios:
//   decode efficiency  = tokens/s ÷ (batch × read bandwidth ÷ bytes read per step), for every batch, where
//                        bytes per step = weights + batch × ctx × KV bytes per token (each read once per step)
//   prefill efficiency = prefill GFLOP/s ÷ matmul peak GFLOP/s
// On cpu the limits are the host's (read bandwidth, the f32 matmul micro-kernel); on a GPU the device's own
// (device-to-device copy bandwidth, cuBLAS GEMM in the weight dtype), measured by the backend.
// Decode steps run over `ctx` cached positions per sequence (cache contents do not change the work); each
// forward picks tokens in the backend (greedy) as the serving engine does, no logits copied out.
import { availableParallelism } from 'node:os';
import { greedyRows, loadNative, type DType, type NativeModel, type NativeModelSpec } from '../native/binding.js';
import { loadModel, type LoadModelOptions } from '../engine/loader/load-model.js';

/** The model as loadModel takes it (dummy weights use its default seed), plus the bench's own knobs. */
export interface EngineBenchOptions extends Omit<LoadModelOptions, 'dummySeed'> {
  kvDtype?: DType;
  promptLen?: number;
  decodeBatches?: number[];
  decodeCtx?: number;
  decodeSteps?: number;
  /** Buffer size of the bandwidth probes (default 512 MiB: far beyond the caches). */
  probeBytes?: number;
}

export interface EngineBenchResult {
  model: { layers: number; hidden: number; vocab: number; weightDtype: DType; kvDtype: DType; weightBytes: number; device: string; threads: number };
  /** Limits of the device the model runs on: `source` 'host' (cpu probes) or the GPU's name. memcpyGBs: host only. */
  machine: { source: string; readBandwidthGBs: number; memcpyGBs?: number; matmulPeakGflops: number; cpuFeatures: string[] };
  /** cpuShare: process CPU time ÷ (wall time × threads) while timing; well below 1 means a busy machine. */
  prefill: { tokens: number; seconds: number; tokensPerSec: number; gflops: number; gflopsPerSec: number; cpuShare: number };
  /** vsFloor: bytes read per step (weights + batch × ctx × KV per token) ÷ read bandwidth, ÷ measured step time. */
  decode: Array<{ batch: number; ctx: number; msPerStep: number; tokensPerSec: number; cpuShare: number; bytesPerStep: number; vsFloor: number }>;
  ratios: { decodeVsBandwidthFloor: number; prefillVsMatmulPeak: number };
}

const blockSize = 16;

/** Parameters touched by the per-token matmuls of all layers (q,k,v,o,gate,up,down). */
export function layerMatmulParams(s: NativeModelSpec): number {
  const q = s.numHeads * s.headDim, kv = s.numKvHeads * s.headDim;
  return s.numLayers * (s.hiddenSize * (q + 2 * kv) + q * s.hiddenSize + 3 * s.hiddenSize * s.intermediateSize);
}

/** FLOPs of a causal prefill of n tokens from an empty cache, logits for the last row only. */
export function prefillFlops(s: NativeModelSpec, n: number): number {
  const attn = 4 * s.numLayers * s.numHeads * s.headDim * ((n * (n + 1)) / 2);
  return 2 * layerMatmulParams(s) * n + attn + 2 * s.hiddenSize * s.vocabSize;
}

function seqBatch(seqs: Array<{ tokens: number[]; start: number; firstBlock: number }>, maxBlocks: number) {
  const tokenIds: number[] = [], positions: number[] = [], slots: number[] = [], qsl = [0], ctx: number[] = [], tables: number[] = [], li: number[] = [];
  for (const s of seqs) {
    s.tokens.forEach((t, i) => {
      tokenIds.push(t);
      positions.push(s.start + i);
      slots.push(s.firstBlock * blockSize + s.start + i);
    });
    qsl.push(tokenIds.length);
    ctx.push(s.start + s.tokens.length);
    for (let b = 0; b < maxBlocks; b++) tables.push(s.firstBlock + b);
    li.push(tokenIds.length - 1);
  }
  return {
    tokenIds: Int32Array.from(tokenIds), positions: Int32Array.from(positions), slotMapping: Int32Array.from(slots),
    queryStartLoc: Int32Array.from(qsl), contextLens: Int32Array.from(ctx), blockTables: Int32Array.from(tables),
    maxBlocksPerSeq: maxBlocks, logitsIndices: Int32Array.from(li),
  };
}

let lastCpuShare = 0;
/** Wall seconds of f; records the CPU share it got (process CPU time ÷ wall ÷ threads). */
async function timed(f: () => Promise<unknown>, threads = 1): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await f();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  lastCpuShare = (c.user + c.system) / 1e6 / wall / threads;
  return wall;
}

export async function runEngineBench(o: EngineBenchOptions, log: (line: string) => void = () => {}): Promise<EngineBenchResult> {
  const native = loadNative();
  const threads = o.threads ?? 0;
  const promptLen = o.promptLen ?? 512;
  const batches = o.decodeBatches ?? [1, 8, 32];
  const ctx = o.decodeCtx ?? 128;
  const steps = o.decodeSteps ?? 6;

  log(`loading model (${o.weights} weights)...`);
  const { model, config } = await loadModel({ dir: o.dir, config: o.config, weights: o.weights, device: o.device, threads, weightDtype: o.weightDtype });
  const spec = config.spec;
  try {
    log('measuring device limits...');
    const probe = o.probeBytes ?? 1 << 29;
    const dev = model.measureDeviceLimits();
    let readBandwidthGBs = dev ? dev.readBandwidthGBs : native.measureReadBandwidth(probe, 4, threads);
    const memcpyGBs = dev ? undefined : native.measureMemcpy(Math.max(4096, probe / 2), 4);
    const matmulPeakGflops = dev ? dev.matmulPeakGflops : native.measureMatmulPeak(threads);
    const maxBatch = Math.max(...batches);
    const blocksPerSeq = Math.ceil((Math.max(promptLen, ctx + steps + 2)) / blockSize) + 1;
    const kvDtype: DType = o.kvDtype ?? (model.deviceName === 'cpu' ? 'f32' : spec.weightDtype);
    model.allocKvCache(blocksPerSeq * maxBatch, blockSize, kvDtype);
    const nThreads = threads || availableParallelism();
    const tok = (i: number) => (i * 7919 + 13) % spec.vocabSize;

    log(`prefill ${promptLen} tokens...`);
    const step = (b: ReturnType<typeof seqBatch>) => model.forwardSample(b, greedyRows(b.logitsIndices.length), false);
    await step(seqBatch([{ tokens: Array.from({ length: 16 }, (_, i) => tok(i)), start: 0, firstBlock: 0 }], blocksPerSeq)); // warm-up
    const prompt = Array.from({ length: promptLen }, (_, i) => tok(i));
    let best = Infinity;
    let cpuShare = 0;
    for (let r = 0; r < 2; r++) {
      const t = await timed(() => step(seqBatch([{ tokens: prompt, start: 0, firstBlock: 0 }], blocksPerSeq)), nThreads);
      if (t < best) [best, cpuShare] = [t, lastCpuShare];
    }
    const flops = prefillFlops(spec, promptLen);

    const decode: EngineBenchResult['decode'] = [];
    for (const b of batches) {
      log(`decode batch ${b}...`);
      const times: Array<[number, number]> = [];
      for (let s = 0; s <= steps; s++) {
        const seqs = Array.from({ length: b }, (_, i) => ({ tokens: [tok(s * b + i)], start: ctx + s, firstBlock: i * blocksPerSeq }));
        const dt = await timed(() => step(seqBatch(seqs, blocksPerSeq)), nThreads);
        if (s > 0) times.push([dt, lastCpuShare]); // step 0 warms up
      }
      times.sort((x, y) => x[0] - y[0]);
      const [med, share] = times[Math.floor(times.length / 2)];
      decode.push({ batch: b, ctx, msPerStep: med * 1e3, tokensPerSec: b / med, cpuShare: share, bytesPerStep: 0, vsFloor: 0 });
    }
    // Bandwidth is the floor's denominator: on the host probe again at the end and keep the best (bursty
    // neighbours share the cores); a GPU's probe is not repeated (it would rerun the GEMM probe too).
    if (!dev) readBandwidthGBs = Math.max(readBandwidthGBs, native.measureReadBandwidth(probe, 4, threads));
    const weightBytes = model.weightBytes();
    for (const d of decode) {
      d.bytesPerStep = weightBytes + d.batch * ctx * model.kvBytesPerToken();
      d.vsFloor = d.bytesPerStep / (readBandwidthGBs * 1e9) / (d.msPerStep / 1e3);
    }
    const d1 = decode.find((d) => d.batch === 1) ?? decode[0];
    return {
      model: { layers: spec.numLayers, hidden: spec.hiddenSize, vocab: spec.vocabSize, weightDtype: spec.weightDtype, kvDtype, weightBytes, device: model.deviceName, threads },
      machine: { source: dev ? model.deviceName : 'host', readBandwidthGBs, memcpyGBs, matmulPeakGflops, cpuFeatures: native.cpuFeatures() },
      prefill: { tokens: promptLen, seconds: best, tokensPerSec: promptLen / best, gflops: flops / 1e9, gflopsPerSec: flops / best / 1e9, cpuShare },
      decode,
      ratios: {
        decodeVsBandwidthFloor: d1.vsFloor,
        prefillVsMatmulPeak: flops / best / 1e9 / matmulPeakGflops,
      },
    };
  } finally {
    model.dispose();
  }
}

export function formatEngineBench(r: EngineBenchResult, name: string): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  const lines = [
    `engine bench: ${name} (${r.model.layers} layers, hidden ${r.model.hidden}, ${r.model.weightDtype} weights ${f(r.model.weightBytes / 2 ** 30, 2)} GiB, ${r.model.kvDtype} KV cache) on ${r.model.device}, threads ${r.model.threads || 'all'}`,
    r.machine.source === 'host'
      ? `machine: read ${f(r.machine.readBandwidthGBs)} GB/s, memcpy ${f(r.machine.memcpyGBs ?? 0)} GB/s, matmul peak ${f(r.machine.matmulPeakGflops)} GFLOP/s [${r.machine.cpuFeatures.join(' ')}]`
      : `device ${r.machine.source}: read ${f(r.machine.readBandwidthGBs)} GB/s (device-to-device copy), ${r.model.weightDtype} GEMM peak ${f(r.machine.matmulPeakGflops / 1e3)} TFLOP/s (cuBLAS 8192^3)`,
    `prefill ${r.prefill.tokens} tokens: ${f(r.prefill.tokensPerSec)} tok/s (${f(r.prefill.seconds, 2)} s, ${f(r.prefill.gflopsPerSec)} GFLOP/s, CPU share ${f(r.prefill.cpuShare, 2)})`,
    ...r.decode.map((d) => `decode batch ${String(d.batch).padStart(2)} (ctx ${d.ctx}): ${f(d.msPerStep, 2)} ms/step, ${f(d.tokensPerSec)} tok/s, ${f(d.vsFloor, 2)} of the floor (${f(d.bytesPerStep / 1e6, 0)} MB/step; CPU share ${f(d.cpuShare, 2)})`),
    `ratios: decode batch-1 vs bandwidth floor ${f(r.ratios.decodeVsBandwidthFloor, 2)}; prefill vs matmul peak ${f(r.ratios.prefillVsMatmulPeak, 2)}`,
  ];
  return lines.join('\n');
}

export type { NativeModel };
