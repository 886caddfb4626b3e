import { PdsError } from './errors.js';

// Human byte sizes: "4G", "512M", "1.5GiB", "1073741824" -> bytes (binary units, as Maru and vLLM use).
const units: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

export function parseSize(s: string | number): number {
  if (typeof s === 'number') {
    if (!Number.isFinite(s) || s < 0) throw new PdsError('PDS_ERR_CONFIG', `invalid size ${s}`, 'size');
    return Math.floor(s);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) throw new PdsError('PDS_ERR_CONFIG', `bad size "${s}" (examples: 4G, 512M, 1.5GiB, 1073741824)`, 'size');
  return Math.floor(Number(m[1]) * units[m[2]!.toLowerCase()]!);
}

export function formatGiB(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}
