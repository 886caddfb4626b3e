// HMAC-SHA256 helpers over the internal secret: domain-separated labels, constant-time comparison.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC-SHA256(key, label || 0x00 || part0 || 0x00 || part1 ...). Parts are strings or bytes. */
export function hmac(key: Buffer, label: string, ...parts: (string | Buffer)[]): Buffer {
  const h = createHmac('sha256', key);
  h.update(label);
  for (const p of parts) {
    h.update(Buffer.from([0]));
    // length-prefix each part so ("ab","c") and ("a","bc") differ
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(b.length, 0);
    h.update(len);
    h.update(b);
  }
  return h.digest();
}

/** Constant-time equality of two byte strings (false when lengths differ). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
