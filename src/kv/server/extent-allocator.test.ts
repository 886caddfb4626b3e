import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExtentAllocator } from './extent-allocator.js';

describe('ExtentAllocator', () => {
  it('allocates page-rounded first-fit extents and coalesces on release', () => {
    const a = new ExtentAllocator(4096, 10 * 4096, 4096);
    const x = a.alloc(1)!;
    const y = a.alloc(4097)!;
    const z = a.alloc(3 * 4096)!;
    assert.deepEqual([x, y, z], [4096, 2 * 4096, 4 * 4096]);
    assert.equal(a.usedBytes, 6 * 4096);
    assert.equal(a.alloc(5 * 4096), null, 'only 4 pages left');
    a.release(y, 4097);
    assert.equal(a.freeExtents, 2);
    a.release(x, 1);
    assert.equal(a.freeExtents, 2, 'x and y merged');
    a.release(z, 3 * 4096);
    assert.equal(a.freeExtents, 1, 'everything merged back');
    assert.equal(a.alloc(10 * 4096), 4096);
    a.checkIntegrity();
  });

  it('detects a double free and keeps free + used = total under churn', () => {
    const a = new ExtentAllocator(0, 64 * 4096, 4096);
    const live: Array<[number, number]> = [];
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      if (live.length && seed % 3 === 0) {
        const [off, n] = live.splice(seed % live.length, 1)[0]!;
        a.release(off, n);
      } else {
        const n = 1 + (seed % (5 * 4096));
        const off = a.alloc(n);
        if (off !== null) live.push([off, n]);
      }
      a.checkIntegrity();
    }
    const [off, n] = live[0]!;
    a.release(off, n);
    assert.throws(() => a.release(off, n), /double free/);
  });
});
