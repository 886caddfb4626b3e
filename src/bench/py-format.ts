// Python str.format equivalents the vLLM result block uses: `{:<40}`, `{:<10}`, `{:<10.2f}`,
// `{s:{c}^{n}}`, and str(float) for file names.

/** Python's format(x, '.Nf'): round-half-even on exact binary ties, 'nan'/'inf' spelled like Python. */
export function fixed(x: number, digits = 2): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  const scaled = x * 10 ** digits;
  const frac = Math.abs(scaled - Math.trunc(scaled));
  // JS toFixed rounds exact ties away from zero; Python rounds them to even. Exact ties need x*2^k
  // integral, so only values like 0.125 are affected.
  if (frac === 0.5 && Number.isInteger(x * 1024)) {
    const t = Math.trunc(scaled);
    const even = t % 2 === 0 ? t : t + Math.sign(scaled);
    return (even / 10 ** digits).toFixed(digits);
  }
  return x.toFixed(digits);
}

/** `{:<w}` */
export function left(s: string | number, w: number): string {
  return String(s).padEnd(w);
}

/** `{s:{c}^{n}}`: Python centres with the extra fill character on the right. */
export function center(s: string, n: number, c: string): string {
  if (s.length >= n) return s;
  const total = n - s.length;
  const l = Math.floor(total / 2);
  return c.repeat(l) + s + c.repeat(total - l);
}

/** `{:<40} {:<10}` for ints and `{:<40} {:<10.2f}` for floats. */
export function rowInt(label: string, v: number | string): string {
  return `${left(label, 40)} ${left(String(v), 10)}`;
}
export function rowFloat(label: string, v: number): string {
  return `${left(label, 40)} ${left(fixed(v), 10)}`;
}

/** Python str(float): 10 -> "10.0", Infinity -> "inf". */
export function pyFloatStr(x: number): string {
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Number.isNaN(x)) return 'nan';
  return Number.isInteger(x) ? `${x}.0` : String(x);
}

/** vLLM's percentile word: 99 -> "99", 99.9 -> "99.9". */
export function percentileWord(p: number): string {
  return String(p); // JS prints 99 and 99.9 as Python's str(int(p)) / str(p) do
}
