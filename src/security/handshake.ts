// Mutual challenge–response over the internal secret, for any byte-stream protocol (kv-server, KV
// transports). Neither side sends the secret; each proves it knows it over both sides' fresh nonces.
//
//   client -> server : clientNonce (32 B)
//   server -> client : serverNonce (32 B), serverProof = H("pds-server", ctx, clientNonce, serverNonce)
//   client           : checks serverProof (a server without the secret is refused here: no takeover)
//   client -> server : clientProof = H("pds-client", ctx, clientNonce, serverNonce)
//   server           : checks clientProof (a client without the secret is refused)
// ctx binds the proofs to one protocol ("kv-server/1"), so a proof from one cannot be replayed in another.
// The caller frames these fields in its own protocol; this module only makes and checks them.
import { randomBytes } from 'node:crypto';
import { hmac, sameBytes } from './hmac.js';

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function serverProof(key: Buffer, ctx: string, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return hmac(key, 'pds-server', ctx, clientNonce, serverNonce);
}

export function clientProof(key: Buffer, ctx: string, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return hmac(key, 'pds-client', ctx, clientNonce, serverNonce);
}

export function checkServerProof(key: Buffer, ctx: string, clientNonce: Buffer, serverNonce: Buffer, proof: Buffer): boolean {
  return sameBytes(serverProof(key, ctx, clientNonce, serverNonce), proof);
}

export function checkClientProof(key: Buffer, ctx: string, clientNonce: Buffer, serverNonce: Buffer, proof: Buffer): boolean {
  return sameBytes(clientProof(key, ctx, clientNonce, serverNonce), proof);
}
