// numpy-compatible summary statistics (np.mean, np.median, np.std with ddof=0, np.percentile with
// linear interpolation). Like vLLM's `values or 0`, an empty list yields 0 everywhere.
export function mean(xs: readonly number[]): number {
  if (!xs.length) return 0;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

export function std(xs: readonly number[]): number {
  if (!xs.length) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / xs.length);
}

/** p in [0, 100]. Sorts a copy unless `sorted` is true. */
export function percentile(xs: readonly number[], p: number, sorted = false): number {
  if (!xs.length) return 0;
  const a = sorted ? xs : [...xs].sort((x, y) => x - y);
  const idx = (p / 100) * (a.length - 1);
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  const frac = idx - lo;
  return a[lo]! + (a[hi]! - a[lo]!) * frac;
}

export function median(xs: readonly number[], sorted = false): number {
  return percentile(xs, 50, sorted);
}
