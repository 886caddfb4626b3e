// The internal secret: one random key shared by the processes of one deployment (engines, proxy, router,
// kv-server) and never by users. It authenticates everything between pdserve processes: kv-server
// connections (handshake.ts), internal HTTP endpoints and peer-originated fields (request-signing.ts).
// The secret never crosses the wire: both sides prove knowledge of it with HMACs over fresh nonces.
//
// File format: 64 lowercase hex characters (32 bytes) and an optional newline. The file must be a regular
// file (not a symlink) that only its owner can read or write (mode & 0o077 == 0); anything else is refused.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { PdsError } from '../util/errors.js';

/** Environment variable naming the secret file (what `pdserve up` sets for its children). */
export const INTERNAL_SECRET_FILE_ENV = 'PDSERVE_INTERNAL_SECRET_FILE';
export const SECRET_BYTES = 32;

export interface InternalSecret {
  /** 32 raw bytes; use only through the HMAC helpers. */
  readonly key: Buffer;
  /** where it was read from (for logs; never log the key) */
  readonly path: string;
}

/** Creates a new secret file (O_EXCL|O_NOFOLLOW, mode 0600). Fails if the path exists. */
export function generateInternalSecretFile(path: string): InternalSecret {
  const key = randomBytes(SECRET_BYTES);
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, key.toString('hex') + '\n');
  } finally {
    closeSync(fd);
  }
  return { key, path };
}

/** Reads and checks a secret file; a PDS_ERR_CONFIG naming the problem otherwise. */
export function loadInternalSecret(path: string): InternalSecret {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    throw new PdsError('PDS_ERR_CONFIG', `internal secret file ${path}: ${(e as Error).message}`);
  }
  if (st.isSymbolicLink()) throw new PdsError('PDS_ERR_CONFIG', `internal secret file ${path} is a symlink; refusing it`);
  if (!st.isFile()) throw new PdsError('PDS_ERR_CONFIG', `internal secret file ${path} is not a regular file`);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  let text: string;
  try {
    const fst = fstatSync(fd);
    if ((fst.mode & 0o077) !== 0)
      throw new PdsError('PDS_ERR_CONFIG', `internal secret file ${path} has mode ${(fst.mode & 0o777).toString(8)}; it must be 0600 (chmod 600 ${path})`);
    if (typeof process.getuid === 'function' && fst.uid !== process.getuid())
      throw new PdsError('PDS_ERR_CONFIG', `internal secret file ${path} belongs to uid ${fst.uid}, not to this user`);
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new PdsError('PDS_ERR_CONFIG', `internal secret file ${path} must hold 64 hex characters (32 bytes)`);
  return { key: Buffer.from(hex, 'hex'), path };
}

/**
 * The secret a process uses: the flag's file if given, else $PDSERVE_INTERNAL_SECRET_FILE, else null
 * (a standalone process with no peers to trust; internal endpoints then refuse everyone).
 */
export function resolveInternalSecret(flagPath?: string | null, env: NodeJS.ProcessEnv = process.env): InternalSecret | null {
  const path = flagPath || env[INTERNAL_SECRET_FILE_ENV];
  return path ? loadInternalSecret(path) : null;
}
