// Request arrival offsets (seconds from the benchmark start), as vLLM's get_request computes them:
// rate inf -> all 0; burstiness inf -> constant 1/rate gaps; otherwise gamma gaps with shape b and
// scale 1/(rate*b) (b = 1 is a Poisson process), accumulated, then rescaled so the last arrival lands
// exactly at n/rate (vLLM does this to stabilise throughput across seeds).
import { Rng } from '../util/rng.js';

export function arrivalOffsets(n: number, requestRate: number, burstiness: number, rng: Rng): number[] {
  if (!(burstiness > 0)) throw new RangeError(`--burstiness must be > 0, got ${burstiness}`);
  if (!(requestRate > 0)) throw new RangeError(`--request-rate must be > 0, got ${requestRate}`);
  const out = new Array<number>(n).fill(0);
  if (requestRate === Infinity || n === 0) return out;
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += burstiness === Infinity ? 1 / requestRate : rng.gamma(burstiness, 1 / (requestRate * burstiness));
    out[i] = t;
  }
  if (t !== 0) {
    const k = n / requestRate / t;
    for (let i = 0; i < n; i++) out[i]! *= k;
  }
  return out;
}
