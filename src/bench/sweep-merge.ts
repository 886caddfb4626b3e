// Merging saved sweeps into one (`bench sweep --from-results a.json b.json`): when the targets cannot
// run side by side (e.g. each deployment needs both GPUs), sweep them one at a time, then overlay.
// The sweeps must agree on what was swept and on the SLOs; target names must be unique.
import { readFileSync } from 'node:fs';
import { PdsError } from '../util/errors.js';
import type { SweepResult } from './sweep-summary.js';

function bad(msg: string): never {
  throw new PdsError('PDS_ERR_CONFIG', msg, '--from-results');
}

export function loadSweep(path: string): SweepResult {
  let r: SweepResult;
  try {
    r = JSON.parse(readFileSync(path, 'utf8')) as SweepResult;
  } catch (e) {
    bad(`cannot read sweep result ${path}: ${(e as Error).message}`);
  }
  if (r?.kind !== 'pdserve-bench-sweep' || !Array.isArray(r.targets)) bad(`${path} is not a pdserve bench sweep result`);
  return r;
}

export function mergeSweeps(rs: readonly SweepResult[]): SweepResult {
  if (!rs.length) bad('--from-results needs at least one file');
  const first = rs[0]!;
  const names = new Set<string>();
  for (const r of rs) {
    if (r.sweep !== first.sweep) bad(`cannot merge a ${r.sweep} sweep with a ${first.sweep} sweep`);
    if (JSON.stringify(r.slo) !== JSON.stringify(first.slo) || r.slo_attainment_target !== first.slo_attainment_target) {
      bad('cannot merge sweeps with different SLOs or attainment targets');
    }
    for (const t of r.targets) {
      if (names.has(t.name)) bad(`target '${t.name}' appears in two sweeps; rename one with --target NAME=URL`);
      names.add(t.name);
    }
  }
  const values = [...new Set(rs.flatMap((r) => r.values))].sort((a, b) => a - b);
  return {
    ...first,
    values,
    targets: rs.flatMap((r) => r.targets),
    interrupted: rs.some((r) => r.interrupted),
    planned_points: rs.reduce((n, r) => n + r.planned_points, 0),
    completed_points: rs.reduce((n, r) => n + r.completed_points, 0),
  };
}
