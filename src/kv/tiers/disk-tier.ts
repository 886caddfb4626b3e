// Local disk tier (LMCache's local_disk): one file per chunk, `<dir>/<key>.<nonce>.kvchunk` (a fresh
// nonce per write, so freeing an old entry can never unlink a newer file of the same key), under a byte
// budget with LRU eviction. A chunk is written to `<file>.tmp-<n>` and renamed on commit, so a
// reader (or a restart) never sees a half-written file. Files found at start are indexed again (oldest
// first), so the cache survives restarts; stray temp files are removed.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkIndex } from '../chunk-index.js';
import { type ChunkHandle, type ChunkKey, type Reservation } from './tier.js';
import { IndexedTier } from './indexed-tier.js';

const EXT = '.kvchunk';

export class DiskTier extends IndexedTier<string> {
  readonly name = 'local_disk';
  /** Path of the existing file being indexed at start (the allocator hands it out instead of a new one). */
  private adopting: string | null = null;

  constructor(
    readonly dir: string,
    capacityBytes: number,
  ) {
    super(capacityBytes);
    mkdirSync(dir, { recursive: true });
    this.index = new ChunkIndex<string>(
      (size, key) => (this.index.usedBytes + size <= this.capacityBytes ? (this.adopting ?? this.pathOf(key)) : null),
      (path) => {
        try {
          unlinkSync(path);
        } catch {
          /* already gone */
        }
      },
    );
    this.adoptExisting();
  }

  private pathOf(key: ChunkKey): string {
    return join(this.dir, `${key}.${randomBytes(4).toString('hex')}${EXT}`);
  }

  private adoptExisting(): void {
    const found: Array<{ key: string; path: string; size: number; mtime: number }> = [];
    for (const f of readdirSync(this.dir)) {
      const p = join(this.dir, f);
      if (f.includes(EXT + '.tmp-')) {
        try {
          unlinkSync(p);
        } catch {
          /* gone */
        }
        continue;
      }
      const m = /^([0-9a-f]{64})\.[0-9a-f]{8}\.kvchunk$/.exec(f);
      if (!m) continue;
      const st = statSync(p);
      if (st.isFile() && st.size > 0) found.push({ key: m[1]!, path: p, size: st.size, mtime: st.mtimeMs });
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      this.adopting = f.path;
      const r = this.index.reserve(f.key, f.size); // past the budget, the oldest files are evicted (unlinked)
      this.adopting = null;
      if (r.status === 'ok') this.index.commit(r.entry);
      else unlinkSync(f.path); // a second file of the same key (same bytes), or one that cannot fit
    }
  }




  async reserve(key: ChunkKey, size: number): Promise<Reservation | null> {
    const w = this.beginWrite(key, size);
    if (!w) return null;
    const { entry, finish } = w;
    const view = Buffer.allocUnsafeSlow(size);
    return {
      view,
      commit: async () => {
        const tmp = `${entry.payload}.tmp-${randomBytes(4).toString('hex')}`;
        try {
          await writeFile(tmp, view);
          if (entry.dead) throw new Error('deleted before commit');
          await rename(tmp, entry.payload);
        } catch (e) {
          void unlink(tmp).catch(() => {});
          finish(false);
          if ((e as Error).message === 'deleted before commit') return;
          throw e;
        }
        finish(true);
      },
      abort: async () => finish(false),
    };
  }

  async get(key: ChunkKey): Promise<ChunkHandle | null> {
    const e = this.index.get(key);
    if (!e) return null;
    this.index.pin(e);
    let bytes: Buffer;
    try {
      bytes = await readFile(e.payload);
    } catch {
      this.index.unpin(e);
      this.index.delete(key); // the file vanished: forget it
      return null;
    }
    return this.pinnedHandle(e, bytes);
  }






  /** Drops pins; the files stay (the next start indexes them again). */
  async close(): Promise<void> {
    this.releasePins();
  }
}
