/**
 * Signs bytes with the signer's private key and returns the 64-byte Ed25519 signature. The
 * keystore owns private keys; `src/blob` only ever sees this callback.
 */
export type SignFn = (data: Uint8Array) => Uint8Array;

/**
 * Verifies an Ed25519 signature with a cached public key object; malformed input is simply "not
 * valid". The one implementation is identity's; blobs only name it.
 */
export { verify as verifyEd25519 } from "../identity/keys.js";
