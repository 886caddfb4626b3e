// CurveZMQ keys for the KV-event sockets, derived from the deployment's internal secret, so only
// processes holding the secret can subscribe (events carry prompt token ids) and a subscriber knows
// the stream is its engine's. Both sides derive both key pairs:
//   server (the engine's PUB and replay ROUTER sockets) and client (every subscriber),
//   secret key = HKDF-SHA256(internal secret, salt "pdserve", info "kv-events curve <role>"), 32 bytes;
//   public key = X25519(secret key). Keys are Z85 text (40 characters), as ZeroMQ takes them.
// The engine's ZAP handler (zap.ts) admits only the derived client key. vLLM engines and collectors
// speak plaintext: --kv-events-plaintext on both sides turns this off.
import { createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';

export interface CurvePair {
  publicKey: string; // Z85
  secretKey: string; // Z85
}

export interface KvEventsCurve {
  server: CurvePair;
  client: CurvePair;
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** ZeroMQ's Z85 (RFC 32/Z85): 4 bytes -> 5 characters, big-endian. `b.length` must be a multiple of 4. */
export function z85Encode(b: Uint8Array): string {
  if (b.length % 4 !== 0) throw new Error('z85Encode: length must be a multiple of 4');
  let out = '';
  for (let i = 0; i < b.length; i += 4) {
    let v = ((b[i]! << 24) >>> 0) + (b[i + 1]! << 16) + (b[i + 2]! << 8) + b[i + 3]!;
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85[v % 85]! + chunk;
      v = Math.floor(v / 85);
    }
    out += chunk;
  }
  return out;
}

// PKCS#8 DER prefix of an X25519 private key; the 32 raw bytes follow.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The X25519 public key of a 32-byte secret (clamped as X25519 does). */
export function x25519Public(secret: Buffer): Buffer {
  const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(priv).export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

function pair(secret: Buffer, role: string): CurvePair {
  const sk = Buffer.from(hkdfSync('sha256', secret, 'pdserve', `kv-events curve ${role}`, 32));
  return { publicKey: z85Encode(x25519Public(sk)), secretKey: z85Encode(sk) };
}

/** Both key pairs from the internal secret's 32 bytes (same result in every process). */
export function kvEventsCurve(internalKey: Buffer): KvEventsCurve {
  return { server: pair(internalKey, 'server'), client: pair(internalKey, 'client') };
}
