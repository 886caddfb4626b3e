// xgrammar's token bitmask applied to one logits row: bit (id & 31) of word (id >> 5) set = allowed.
// Rejected ids become -Infinity; ids past the mask (none when the mask covers the row) are rejected too.

/** row: [vocab] logits, modified in place; mask: Int32Array [ceil(vocab / 32)]. */
export function applyBitmask(row: Float32Array, mask: Int32Array): void {
  const V = row.length;
  const words = Math.min(mask.length, Math.ceil(V / 32));
  for (let w = 0; w < words; w++) {
    const bits = mask[w]!;
    if (bits === -1) continue; // all 32 allowed
    const base = w << 5;
    const end = Math.min(base + 32, V);
    if (bits === 0) {
      row.fill(-Infinity, base, end);
      continue;
    }
    for (let i = base; i < end; i++) if (((bits >>> (i - base)) & 1) === 0) row[i] = -Infinity;
  }
  if (words * 32 < V) row.fill(-Infinity, words * 32, V);
}

/** Whether `tokenId` is allowed by the mask. */
export function bitmaskAllows(mask: Int32Array, tokenId: number): boolean {
  const w = tokenId >> 5;
  return w < mask.length && ((mask[w]! >>> (tokenId & 31)) & 1) === 1;
}
