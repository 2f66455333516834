import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH } from "../identity/keys.js";

/**
 * Signs bytes with the signer's private key and returns the 64-byte Ed25519 signature. The
 * keystore owns private keys; `src/blob` only ever sees this callback.
 */
export type SignFn = (data: Uint8Array) => Uint8Array;

// Public keys of recent signers. Importing a key is far costlier than verifying with it, and a
// busy daemon sees the same few signers over and over. Bounded so a stream of blobs from fresh
// keys cannot grow memory; Map order gives a cheap LRU.
const KEY_CACHE_LIMIT = 1024;
const keyCache = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject | undefined {
  const x = Buffer.from(publicKey).toString("base64url");
  const hit = keyCache.get(x);
  if (hit !== undefined) {
    keyCache.delete(x);
    keyCache.set(x, hit);
    return hit;
  }
  let key: KeyObject;
  try {
    // JWK, not SPKI DER: OpenSSL 3's DER decoder path is several times slower.
    key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
  } catch {
    return undefined;
  }
  if (keyCache.size >= KEY_CACHE_LIMIT) {
    const oldest = keyCache.keys().next();
    if (!oldest.done) keyCache.delete(oldest.value);
  }
  keyCache.set(x, key);
  return key;
}

/**
 * Verifies an Ed25519 signature (RFC 8032, pure) with a cached public key object. Malformed
 * input is simply "not valid".
 *
 * @param publicKey - 32-byte Ed25519 public key.
 * @param data - the signed bytes.
 * @param signature - the 64-byte signature.
 */
export function verifyEd25519(
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (
    !(publicKey instanceof Uint8Array) ||
    publicKey.length !== PUBLIC_KEY_LENGTH ||
    !(signature instanceof Uint8Array) ||
    signature.length !== SIGNATURE_LENGTH
  ) {
    return false;
  }
  const key = publicKeyObject(publicKey);
  if (key === undefined) return false;
  try {
    return cryptoVerify(null, data, key, signature);
  } catch {
    return false;
  }
}
