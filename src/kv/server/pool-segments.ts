// The pool as one offset space over several files: segment i is `poolFile` (i = 0) or `poolFile.i`,
// each at most segmentSize bytes (mapShared hands a mapping to JS as one ArrayBuffer, which V8 caps at
// 4 GiB), covering pool offsets [i*segmentSize, i*segmentSize + its length). Extents never cross a
// segment boundary (the server allocates per segment), so every chunk is one contiguous view.
// Safety: a segment is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 (native mapShared); a stale
// regular file of this user is removed first, a symlink or someone else's file at the path is refused.
// Mapping an existing pool (clients) never follows a symlink either.
import { lstatSync, unlinkSync } from 'node:fs';
import { loadNative } from '../../native/binding.js';
import { PAGE_SIZE } from './protocol.js';

export const MAX_SEGMENT_BYTES = 4 * 2 ** 30;

export function segmentPath(poolFile: string, i: number): string {
  return i === 0 ? poolFile : `${poolFile}.${i}`;
}

/** Lengths of the segments of a pool (all segmentSize but the last). */
export function segmentLengths(poolSize: number, segmentSize: number): number[] {
  if (segmentSize <= 0 || segmentSize % PAGE_SIZE || segmentSize > MAX_SEGMENT_BYTES)
    throw new RangeError(`segment size must be a multiple of ${PAGE_SIZE} in (0, 4 GiB], got ${segmentSize}`);
  const out: number[] = [];
  for (let off = 0; off < poolSize; off += segmentSize) out.push(Math.min(segmentSize, poolSize - off));
  return out;
}

/** Clears the way for a new segment at `path`: removes a stale pool file of ours, refuses anything else. */
function clearStale(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (st.isSymbolicLink()) throw new Error(`pool file ${path} is a symlink; refusing to follow it (remove it, or pick another --pool-file)`);
  if (!st.isFile()) throw new Error(`pool file ${path} exists and is not a regular file`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`pool file ${path} belongs to uid ${st.uid}; refusing to replace it`);
  unlinkSync(path); // a stale pool of ours: a fresh inode, so clients of the old one never alias this one
}

export class PoolSegments {
  readonly maps: Uint8Array[] = [];

  /** Maps every segment; create=true makes fresh files (a new inode each, stale ones unlinked first). */
  constructor(
    readonly poolFile: string,
    readonly poolSize: number,
    readonly segmentSize: number,
    create: boolean,
  ) {
    const native = loadNative();
    try {
      segmentLengths(poolSize, segmentSize).forEach((len, i) => {
        const path = segmentPath(poolFile, i);
        if (create) clearStale(path);
        this.maps.push(new Uint8Array(native.mapShared(path, len, create)));
      });
    } catch (e) {
      if (create) this.unlinkMapped();
      throw e;
    }
  }

  /** Bytes [off, off + len) of the pool; they must lie in one segment. */
  view(off: number, len: number): Uint8Array {
    const i = Math.floor(off / this.segmentSize);
    const local = off - i * this.segmentSize;
    const m = this.maps[i];
    if (!m || local + len > m.byteLength) throw new RangeError(`pool range [${off}, +${len}) crosses a segment or the end`);
    return m.subarray(local, local + len);
  }

  /**
   * Maps every page into this process by reading one byte of each (in 32 MiB slices, yielding between
   * them), so copies into the pool later do not take a page fault per 4 KiB. Reads only: safe while
   * other processes write. Stops early when `cancelled()` turns true.
   */
  async prefault(cancelled: () => boolean = () => false): Promise<void> {
    const slice = 32 * 2 ** 20;
    let sink = 0;
    for (const m of this.maps)
      for (let off = 0; off < m.byteLength; off += slice) {
        if (cancelled()) return;
        const end = Math.min(m.byteLength, off + slice);
        for (let p = off; p < end; p += PAGE_SIZE) sink ^= m[p]!;
        await new Promise<void>((r) => setImmediate(r));
      }
    if (sink === 0x1_0000) throw new Error('unreachable'); // keeps the reads from being optimized away
  }

  /** Removes the segments this instance created (after a failed start: never someone else's file). */
  private unlinkMapped(): void {
    for (let i = 0; i < this.maps.length; i++) {
      try {
        unlinkSync(segmentPath(this.poolFile, i));
      } catch {
        /* already gone */
      }
    }
  }

  unlinkAll(): void {
    for (let i = 0; i < Math.max(1, this.maps.length, Math.ceil(this.poolSize / this.segmentSize)); i++) {
      try {
        unlinkSync(segmentPath(this.poolFile, i));
      } catch {
        /* already gone */
      }
    }
  }
}
