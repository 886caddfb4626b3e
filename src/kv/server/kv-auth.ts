// The kv-server session handshake (protocol.ts HELLO / AUTH): payload codecs and the checks both sides
// run, over the mutual challenge-response of src/security/handshake.ts.
//
//   client -> HELLO  clientNonce
//   server -> OK     u8 mode, serverNonce, serverProof      mode 1: proof = H("pds-server", ctx, cn, sn)
//   client           mode 1: checks serverProof (refuses a server that does not know the secret);
//                    mode 0 (server without secret): refused by a client that has one
//   client -> AUTH   clientProof, writerId                  mode 1: proof = H("pds-client", ctx, cn, sn)
//   server -> OK     session info + MAC(info)                the MAC binds pool file, pool nonce and limits to
//                                                           this authenticated exchange
// Policy with no secret (Redis protected mode): a server without one serves only loopback clients; a
// client with a secret never talks to such a server; a client without one accepts it with a warning.
import { clientProof, checkClientProof, checkServerProof, NONCE_BYTES, PROOF_BYTES, serverProof } from '../../security/handshake.js';
import { hmac, sameBytes } from '../../security/hmac.js';

export const AUTH_CTX = 'kv-server/2';
export const WRITER_ID_BYTES = 16;
export const POOL_NONCE_BYTES = 16;
export const MODE_OPEN = 0;
export const MODE_SECRET = 1;

/** What an authenticated client learns about the server (AUTH's reply). */
export interface SessionInfo {
  poolSize: number;
  pageSize: number;
  /** largest PUT payload */
  maxPayload: number;
  /** = the pool file header's nonce */
  nonce: Buffer;
  poolFile: string;
  segmentSize: number;
  /** the server closes a connection silent this long; clients PING well within it (0 = never) */
  idleTimeoutMs: number;
}

export interface HelloReply {
  mode: number;
  serverNonce: Buffer;
  proof: Buffer;
}

export function encodeHelloReply(r: HelloReply): Buffer {
  return Buffer.concat([Buffer.from([r.mode]), r.serverNonce, r.proof]);
}

export function decodeHelloReply(p: Buffer): HelloReply | null {
  if (p.length !== 1 + NONCE_BYTES + PROOF_BYTES) return null;
  return { mode: p[0]!, serverNonce: Buffer.from(p.subarray(1, 1 + NONCE_BYTES)), proof: Buffer.from(p.subarray(1 + NONCE_BYTES)) };
}

export function encodeAuth(proof: Buffer, writerId: Buffer): Buffer {
  return Buffer.concat([proof, writerId]);
}

export function decodeAuth(p: Buffer): { proof: Buffer; writerId: Buffer } | null {
  if (p.length !== PROOF_BYTES + WRITER_ID_BYTES) return null;
  return { proof: Buffer.from(p.subarray(0, PROOF_BYTES)), writerId: Buffer.from(p.subarray(PROOF_BYTES)) };
}

// u64 poolSize, u32 pageSize, u32 maxPayload, 16B nonce, u64 segmentSize, u32 idleTimeoutMs, u16 n, n B path
export function encodeSessionInfo(i: SessionInfo): Buffer {
  const path = Buffer.from(i.poolFile, 'utf8');
  const b = Buffer.alloc(8 + 4 + 4 + POOL_NONCE_BYTES + 8 + 4 + 2);
  b.writeBigUInt64LE(BigInt(i.poolSize), 0);
  b.writeUInt32LE(i.pageSize, 8);
  b.writeUInt32LE(i.maxPayload, 12);
  i.nonce.copy(b, 16);
  b.writeBigUInt64LE(BigInt(i.segmentSize), 32);
  b.writeUInt32LE(i.idleTimeoutMs, 40);
  b.writeUInt16LE(path.length, 44);
  return Buffer.concat([b, path]);
}

export function decodeSessionInfo(p: Buffer): SessionInfo | null {
  if (p.length < 46) return null;
  const n = p.readUInt16LE(44);
  if (p.length !== 46 + n) return null;
  return {
    poolSize: Number(p.readBigUInt64LE(0)),
    pageSize: p.readUInt32LE(8),
    maxPayload: p.readUInt32LE(12),
    nonce: Buffer.from(p.subarray(16, 32)),
    segmentSize: Number(p.readBigUInt64LE(32)),
    idleTimeoutMs: p.readUInt32LE(40),
    poolFile: p.toString('utf8', 46, 46 + n),
  };
}

export function sessionMac(key: Buffer, clientNonce: Buffer, serverNonce: Buffer, info: Buffer): Buffer {
  return hmac(key, 'pds-kv-session', AUTH_CTX, clientNonce, serverNonce, info);
}

// ---- server side ----

export function serverHello(key: Buffer | null, clientNonce: Buffer, serverNonce: Buffer): HelloReply {
  return key
    ? { mode: MODE_SECRET, serverNonce, proof: serverProof(key, AUTH_CTX, clientNonce, serverNonce) }
    : { mode: MODE_OPEN, serverNonce, proof: Buffer.alloc(PROOF_BYTES) };
}

export function serverChecksClient(key: Buffer | null, clientNonce: Buffer, serverNonce: Buffer, proof: Buffer): boolean {
  return key ? checkClientProof(key, AUTH_CTX, clientNonce, serverNonce, proof) : true;
}

/** AUTH reply payload: the session info, followed by its MAC when the server has a secret. */
export function sessionReply(key: Buffer | null, clientNonce: Buffer, serverNonce: Buffer, info: SessionInfo): Buffer {
  const b = encodeSessionInfo(info);
  return key ? Buffer.concat([b, sessionMac(key, clientNonce, serverNonce, b)]) : b;
}

// ---- client side ----

/** The client's answer to HELLO's reply: its proof, or why it refuses the server. */
export function clientAnswer(key: Buffer | null, clientNonce: Buffer, r: HelloReply): { proof: Buffer } | { refuse: string } {
  if (r.mode === MODE_OPEN) {
    if (key) return { refuse: 'it has no internal secret (an engine with a secret never talks to an unauthenticated kv-server)' };
    return { proof: Buffer.alloc(PROOF_BYTES) };
  }
  if (r.mode !== MODE_SECRET) return { refuse: `unknown auth mode ${r.mode}` };
  if (!key) return { refuse: 'it requires the internal secret and this process has none (--internal-secret-file or $PDSERVE_INTERNAL_SECRET_FILE)' };
  if (!checkServerProof(key, AUTH_CTX, clientNonce, r.serverNonce, r.proof))
    return { refuse: 'it could not prove the internal secret (another deployment\'s server on this port?)' };
  return { proof: clientProof(key, AUTH_CTX, clientNonce, r.serverNonce) };
}

/** The session info from AUTH's reply, checked against its MAC (mode 1); null when it does not verify. */
export function clientSession(key: Buffer | null, clientNonce: Buffer, serverNonce: Buffer, p: Buffer): SessionInfo | null {
  if (!key) return decodeSessionInfo(p);
  if (p.length < PROOF_BYTES) return null;
  const body = p.subarray(0, p.length - PROOF_BYTES);
  if (!sameBytes(sessionMac(key, clientNonce, serverNonce, body), Buffer.from(p.subarray(p.length - PROOF_BYTES)))) return null;
  return decodeSessionInfo(Buffer.from(body));
}
