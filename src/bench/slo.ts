// Per-request SLO checks shared by vLLM's request goodput (`--goodput`) and the sweep's attainment.
// vLLM's rule (calculate_metrics): a successful request is good when every given SLO >= its value;
// TTFT and E2EL as measured, TPOT = (E2EL - TTFT) / (out - 1) and 0 when out <= 1 ("we regard tpot
// as 0 for goodput"). SLOs are milliseconds, record times seconds. Failed requests are never good.
import type { GoodputConfig, RequestRecord } from './types.js';

/** TPOT in seconds as vLLM's goodput sees it (0 for outputs of at most one token). */
export function goodputTpot(r: Pick<RequestRecord, 'latency' | 'ttft'>, outputLen: number): number {
  return outputLen > 1 ? (r.latency - r.ttft) / (outputLen - 1) : 0;
}

/** Whether one request meets every SLO in `slo` (an empty `slo` admits every successful request). */
export function meetsSlo(r: RequestRecord, outputLen: number, slo: GoodputConfig): boolean {
  if (!r.success) return false;
  if (slo.ttft !== undefined && !(slo.ttft / 1000 >= r.ttft)) return false;
  if (slo.tpot !== undefined && !(slo.tpot / 1000 >= goodputTpot(r, outputLen))) return false;
  if (slo.e2el !== undefined && !(slo.e2el / 1000 >= r.latency)) return false;
  return true;
}

/** How many records meet `slo`; outputLens[i] is record i's output length (metrics.actualOutputLens). */
export function countGood(records: readonly RequestRecord[], outputLens: readonly number[], slo: GoodputConfig): number {
  let n = 0;
  records.forEach((r, i) => {
    if (meetsSlo(r, outputLens[i] ?? r.outputTokens, slo)) n++;
  });
  return n;
}
