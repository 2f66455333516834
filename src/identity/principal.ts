import { base58btc } from "multiformats/bases/base58";
import { IdentityError } from "./errors.js";
import { PUBLIC_KEY_LENGTH } from "./keys.js";

/** Unsigned-varint encoding of multicodec `ed25519-pub` (0xed). */
export const ED25519_PUB_MULTICODEC: Uint8Array = Uint8Array.of(0xed, 0x01);

/** Length of principal bytes: multicodec prefix + public key. */
export const PRINCIPAL_BYTES_LENGTH = ED25519_PUB_MULTICODEC.length + PUBLIC_KEY_LENGTH;

// 34 bytes are 47 base58 characters, plus the multibase "z". The bound keeps a hostile
// megabyte-long string away from base58's quadratic decoder.
const MAX_PRINCIPAL_STRING_LENGTH = 64;

function checkPublicKey(publicKey: Uint8Array): void {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LENGTH) {
    throw new IdentityError(
      "invalid_argument",
      `Ed25519 public key must be ${PUBLIC_KEY_LENGTH} bytes`,
    );
  }
}

/**
 * Binary principal: multicodec `ed25519-pub` varint (`0xed 0x01`) followed by the key.
 *
 * @param publicKey - 32-byte Ed25519 public key.
 * @returns 34 bytes.
 * @throws {IdentityError} `invalid_argument` when the key is not 32 bytes.
 */
export function principalBytes(publicKey: Uint8Array): Uint8Array {
  checkPublicKey(publicKey);
  const out = new Uint8Array(PRINCIPAL_BYTES_LENGTH);
  out.set(ED25519_PUB_MULTICODEC, 0);
  out.set(publicKey, ED25519_PUB_MULTICODEC.length);
  return out;
}

/**
 * Parses binary principal bytes back into the public key.
 *
 * @param bytes - 34 bytes starting with `0xed 0x01`.
 * @returns the 32-byte public key (a copy).
 * @throws {IdentityError} `invalid_argument` for any other input.
 */
export function publicKeyFromPrincipalBytes(bytes: Uint8Array): Uint8Array {
  if (
    !(bytes instanceof Uint8Array) ||
    bytes.length !== PRINCIPAL_BYTES_LENGTH ||
    bytes[0] !== ED25519_PUB_MULTICODEC[0] ||
    bytes[1] !== ED25519_PUB_MULTICODEC[1]
  ) {
    throw new IdentityError("invalid_argument", "not an Ed25519 principal");
  }
  return bytes.slice(ED25519_PUB_MULTICODEC.length);
}

/**
 * String form of a principal: base58btc multibase of {@link principalBytes}, always `z6Mk…`.
 * It is both a key's `public_key` and its `account_id` on the wire.
 *
 * @param publicKey - 32-byte Ed25519 public key.
 * @throws {IdentityError} `invalid_argument` when the key is not 32 bytes.
 */
export function principalToString(publicKey: Uint8Array): string {
  return base58btc.encode(principalBytes(publicKey));
}

/**
 * Parses a `z6Mk…` principal string.
 *
 * @param s - the principal string.
 * @returns the 32-byte Ed25519 public key.
 * @throws {IdentityError} `invalid_argument` for a wrong multibase prefix, bad base58, a codec
 *   other than `ed25519-pub`, or a wrong length.
 */
export function parsePrincipal(s: string): Uint8Array {
  if (typeof s !== "string" || s.length === 0 || s.length > MAX_PRINCIPAL_STRING_LENGTH) {
    throw new IdentityError("invalid_argument", "not an Ed25519 principal");
  }
  let bytes: Uint8Array;
  try {
    // Requires the "z" prefix and rejects any non-base58btc character.
    bytes = base58btc.decode(s);
  } catch {
    throw new IdentityError("invalid_argument", "principal is not base58btc multibase");
  }
  const publicKey = publicKeyFromPrincipalBytes(bytes);
  // Principals are used as map and row keys elsewhere, so one key must have exactly one accepted
  // spelling. The vendored decoder is strict today; re-encoding makes that our guarantee, not its.
  if (principalToString(publicKey) !== s) {
    throw new IdentityError("invalid_argument", "principal is not in canonical form");
  }
  return publicKey;
}
