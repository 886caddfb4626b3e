// Minimal static SVG line charts for the HTML report (no scripts, no network): axes with "nice"
// ticks, one <path data-series=NAME> per series, step or straight segments.
export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  step?: boolean; // hold y until the next x
  /** Draw a <circle data-series data-x data-y> at every point (sweep charts: one per measured point). */
  markers?: boolean;
  /** Dashed stroke (reference lines such as an SLO). */
  dashed?: boolean;
}

export interface ChartSpec {
  id: string; // data-plot value, e.g. "ttft-cdf"
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  yMin?: number;
  yMax?: number;
}

const W = 560;
const H = 320;
const M = { l: 64, r: 16, t: 30, b: 48 }; // legend sits in the top margin

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  return String(Number(v.toPrecision(4)));
}

export function lineChart(c: ChartSpec): string {
  const all = c.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = xs.length ? Math.min(0, ...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  const y0 = c.yMin ?? (ys.length ? Math.min(0, ...ys) : 0);
  const y1 = c.yMax ?? (ys.length ? Math.max(...ys) * 1.05 : 1);
  const xt = niceTicks(x0, x1 > x0 ? x1 : x0 + 1);
  const yt = niceTicks(y0, y1 > y0 ? y1 : y0 + 1);
  const xa = xt[0]! < x0 ? xt[0]! : x0;
  const xb = Math.max(xt[xt.length - 1]!, x1);
  const ya = Math.min(yt[0]!, y0);
  const yb = Math.max(yt[yt.length - 1]!, y1);
  const px = (x: number) => M.l + ((x - xa) / (xb - xa || 1)) * (W - M.l - M.r);
  const py = (y: number) => H - M.b - ((y - ya) / (yb - ya || 1)) * (H - M.t - M.b);
  const parts: string[] = [];
  for (const t of xt) {
    parts.push(`<line x1="${px(t).toFixed(1)}" x2="${px(t).toFixed(1)}" y1="${M.t}" y2="${H - M.b}" class="grid"/>`);
    parts.push(`<text x="${px(t).toFixed(1)}" y="${H - M.b + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  for (const t of yt) {
    parts.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${M.l - 6}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end">${fmtTick(t)}</text>`);
  }
  parts.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${H - M.b}" y2="${H - M.b}" class="axis"/>`);
  parts.push(`<line x1="${M.l}" x2="${M.l}" y1="${M.t}" y2="${H - M.b}" class="axis"/>`);
  parts.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  c.series.forEach((s, i) => {
    let d = '';
    s.points.forEach(([x, y], j) => {
      const X = px(x).toFixed(1);
      const Y = py(y).toFixed(1);
      if (j === 0) d += `M${X} ${Y}`;
      else if (s.step) d += `H${X}V${Y}`;
      else d += `L${X} ${Y}`;
    });
    if (s.points.length === 1) d += `h2`;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    parts.push(`<path data-series="${esc(s.name)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}><title>${esc(s.name)}</title></path>`);
    if (s.markers) {
      for (const [x, y] of s.points) {
        parts.push(`<circle data-series="${esc(s.name)}" data-x="${x}" data-y="${y}" cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="4" fill="${s.color}"><title>${esc(s.name)}: ${fmtTick(x)}, ${fmtTick(y)}</title></circle>`);
      }
    }
    const lx = M.l + 10 + i * Math.min(150, (W - M.l - M.r - 10) / c.series.length);
    parts.push(`<rect x="${lx}" y="8" width="14" height="4" fill="${s.color}"/><text x="${lx + 18}" y="14">${esc(s.name)}</text>`);
  });
  return `<figure data-plot="${esc(c.id)}"><figcaption>${esc(c.title)}</figcaption>` +
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(c.title)}">${parts.join('')}</svg></figure>`;
}

/** Empirical CDF as at most maxPoints [value, fraction] points (quantiles when there are more). */
export function cdfPoints(values: readonly number[], maxPoints = 400): Array<[number, number]> {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  if (!n) return [];
  if (n <= maxPoints) return v.map((x, i) => [x, (i + 1) / n]);
  const out: Array<[number, number]> = [];
  for (let k = 0; k < maxPoints; k++) {
    const i = Math.min(n - 1, Math.round(((k + 1) / maxPoints) * n) - 1);
    out.push([v[i]!, (i + 1) / n]);
  }
  return out;
}

/** Thin a step series to at most maxPoints by keeping each bin's maximum. */
export function thinSteps(points: Array<[number, number]>, maxPoints = 1500): Array<[number, number]> {
  if (points.length <= maxPoints) return points;
  const t0 = points[0]![0];
  const t1 = points[points.length - 1]![0];
  const bins = maxPoints;
  const out: Array<[number, number]> = [];
  let j = 0;
  for (let b = 0; b < bins; b++) {
    const end = t0 + ((b + 1) / bins) * (t1 - t0);
    let m = -Infinity;
    while (j < points.length && (points[j]![0] <= end || b === bins - 1)) m = Math.max(m, points[j++]![1]);
    if (m > -Infinity) out.push([t0 + (b / bins) * (t1 - t0), m]);
  }
  return out;
}
