// First-fit allocator of contiguous, page-aligned extents over [base, base + size) of the pool file.
// Contiguous so a same-host client can gather a whole chunk straight into one view of the mapping.
// Free extents are kept sorted by offset and coalesced on free. Knows only integers.
export class ExtentAllocator {
  private free: Array<{ off: number; len: number }>;
  private used = 0;

  constructor(
    readonly base: number,
    readonly size: number,
    readonly align: number,
  ) {
    if (base % align || size % align) throw new RangeError('ExtentAllocator: base and size must be multiples of align');
    this.free = size > 0 ? [{ off: base, len: size }] : [];
  }

  private round(n: number): number {
    return Math.ceil(Math.max(n, 1) / this.align) * this.align;
  }

  /** Offset of a new extent of at least n bytes, or null if no free extent is large enough. */
  alloc(n: number): number | null {
    const len = this.round(n);
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i]!;
      if (f.len < len) continue;
      const off = f.off;
      if (f.len === len) this.free.splice(i, 1);
      else {
        f.off += len;
        f.len -= len;
      }
      this.used += len;
      return off;
    }
    return null;
  }

  /** Gives back the extent alloc(n) returned at off (n as passed to alloc). */
  release(off: number, n: number): void {
    const len = this.round(n);
    let i = 0;
    while (i < this.free.length && this.free[i]!.off < off) i++;
    const prev = this.free[i - 1];
    const next = this.free[i];
    if ((prev && prev.off + prev.len > off) || (next && off + len > next.off)) throw new Error(`ExtentAllocator: double free of [${off}, +${len})`);
    this.used -= len;
    if (prev && prev.off + prev.len === off) {
      prev.len += len;
      if (next && prev.off + prev.len === next.off) {
        prev.len += next.len;
        this.free.splice(i, 1);
      }
    } else if (next && off + len === next.off) {
      next.off = off;
      next.len += len;
    } else this.free.splice(i, 0, { off, len });
  }

  get usedBytes(): number {
    return this.used;
  }

  get freeExtents(): number {
    return this.free.length;
  }

  /** free + used = total, extents sorted, disjoint and coalesced. */
  checkIntegrity(): void {
    let freeSum = 0;
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i]!;
      freeSum += f.len;
      if (f.len <= 0 || f.off < this.base || f.off + f.len > this.base + this.size) throw new Error('ExtentAllocator: extent out of range');
      const n = this.free[i + 1];
      if (n && f.off + f.len >= n.off) throw new Error('ExtentAllocator: free extents overlap or are not coalesced');
    }
    if (freeSum + this.used !== this.size) throw new Error(`ExtentAllocator: free ${freeSum} + used ${this.used} != ${this.size}`);
  }
}
