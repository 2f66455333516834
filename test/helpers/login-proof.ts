import { randomBytes } from "node:crypto";
import nacl from "tweetnacl";
import { encodePrincipalProof, principalProofMessage } from "../../src/security/principal-proof.js";

/**
 * The X-Seed-Principal-Proof a browser makes at login, signed with tweetnacl (an implementation
 * independent of the daemon's).
 */
export function loginProof(seed: Uint8Array, origin: string, issuedAt = Date.now()): string {
  const challenge = new Uint8Array(32);
  new DataView(challenge.buffer).setBigUint64(0, BigInt(issuedAt));
  challenge.set(randomBytes(24), 8);
  const nonce = new Uint8Array(randomBytes(16));
  const msg = principalProofMessage(challenge, origin, nonce);
  const sig = nacl.sign.detached(msg, nacl.sign.keyPair.fromSeed(seed).secretKey);
  return encodePrincipalProof({ challenge, origin, nonce, sig });
}
