// Side-by-side result table for `bench compare`: the vLLM block's rows with two value columns
// (A, B) and a B/A ratio column. Rows: `{:<40} {:<W} {:<W} {:<8}` with W = max(12, label width).
import { center, fixed, left } from './py-format.js';
import { sectionRows, summaryRows, type BlockInput } from './result-block.js';

export interface CompareRow {
  label: string;
  a: number;
  b: number;
  isInt: boolean;
}

export interface CompareSection {
  header: string | null; // null: the summary rows
  rows: CompareRow[];
}

/** Rows of both blocks, aligned by label (a row present in only one block is skipped). */
export function compareSections(a: BlockInput, b: BlockInput): CompareSection[] {
  const bSummary = new Map(summaryRows(b).map(([l, v]) => [l, v]));
  const out: CompareSection[] = [{
    header: null,
    rows: summaryRows(a).filter(([l]) => bSummary.has(l)).map(([label, v, isInt]) => ({ label, a: v, b: bSummary.get(label)!, isInt })),
  }];
  const bSections = new Map(sectionRows(b).map(([h, rows]) => [h, new Map(rows)]));
  for (const [header, rows] of sectionRows(a)) {
    const other = bSections.get(header);
    if (!other) continue;
    out.push({ header, rows: rows.filter(([l]) => other.has(l)).map(([label, v]) => ({ label, a: v, b: other.get(label)!, isInt: false })) });
  }
  return out;
}

/** B/A, or '-' when A is 0. */
export function ratio(a: number, b: number): string {
  return a === 0 ? '-' : fixed(b / a);
}

export function formatCompareTable(a: BlockInput, b: BlockInput, labelA: string, labelB: string): string {
  const w = Math.max(12, labelA.length, labelB.length);
  const width = 40 + 1 + w + 1 + w + 1 + 8;
  const fmt = (r: CompareRow, v: number) => (r.isInt ? String(v) : fixed(v));
  const lines = [center(' Serving Benchmark Comparison ', width, '=')];
  lines.push(`${left('', 40)} ${left(labelA, w)} ${left(labelB, w)} ${left('B/A', 8)}`);
  for (const s of compareSections(a, b)) {
    if (s.header) lines.push(center(s.header, width, '-'));
    for (const r of s.rows) lines.push(`${left(r.label, 40)} ${left(fmt(r, r.a), w)} ${left(fmt(r, r.b), w)} ${left(ratio(r.a, r.b), 8)}`);
  }
  lines.push('='.repeat(width));
  return lines.join('\n') + '\n';
}
