import {
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from "node:crypto";
import { IdentityError } from "./errors.js";
import { mnemonicToSeed } from "./mnemonic.js";
import { derivePath } from "./slip10.js";

/** SLIP-10 path of a Seed account key (BIP-44 purpose, Seed's coin type 104109, account 0). */
export const SEED_ACCOUNT_PATH = "m/44'/104109'/0'";

/** Length of an Ed25519 seed (private key) in bytes. */
export const SEED_LENGTH = 32;
/** Length of an Ed25519 public key in bytes. */
export const PUBLIC_KEY_LENGTH = 32;
/** Length of an Ed25519 signature in bytes. */
export const SIGNATURE_LENGTH = 64;

// DER headers for Ed25519 (RFC 8410): with them node:crypto takes raw 32-byte keys without any
// ASN.1 library. The 32 key bytes always follow the header.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) {
    throw new IdentityError("invalid_argument", `Ed25519 seed must be ${SEED_LENGTH} bytes`);
  }
}

function privateKeyObject(seed: Uint8Array): KeyObject {
  checkSeed(seed);
  const der = Buffer.concat([PKCS8_PREFIX, seed]);
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } finally {
    // The KeyObject keeps its own copy inside OpenSSL; this one would linger in the JS heap.
    der.fill(0);
  }
}

/**
 * Derives the Seed account key for a mnemonic: BIP-39 seed, then SLIP-10 Ed25519 at
 * {@link SEED_ACCOUNT_PATH}.
 *
 * @param words - a valid BIP-39 English mnemonic.
 * @param passphrase - optional BIP-39 passphrase; a different passphrase is a different account.
 * @returns the 32-byte Ed25519 seed.
 * @throws {IdentityError} `invalid_argument` when the mnemonic is not valid.
 */
export function keyFromMnemonic(words: readonly string[], passphrase = ""): Uint8Array {
  const bip39Seed = mnemonicToSeed(words, passphrase);
  try {
    const node = derivePath(bip39Seed, SEED_ACCOUNT_PATH);
    node.chainCode.fill(0);
    return node.key;
  } finally {
    bip39Seed.fill(0);
  }
}

/**
 * Computes the Ed25519 public key of a 32-byte seed.
 *
 * @param seed - 32-byte Ed25519 seed.
 * @returns the 32-byte public key.
 * @throws {IdentityError} `invalid_argument` when the seed is not 32 bytes.
 */
export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyObject(seed)).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}

/**
 * Signs `data` with Ed25519 (RFC 8032, pure, no pre-hash).
 *
 * @param seed - 32-byte Ed25519 seed.
 * @param data - the message.
 * @returns the 64-byte signature.
 * @throws {IdentityError} `invalid_argument` when the seed is not 32 bytes.
 */
export function sign(seed: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(cryptoSign(null, data, privateKeyObject(seed)));
}

/**
 * Verifies an Ed25519 signature.
 *
 * A signature is untrusted input, so anything malformed (wrong length, a public key that is not
 * a curve point) is simply "not valid" rather than an error.
 *
 * @param publicKey - 32-byte Ed25519 public key.
 * @param data - the message.
 * @param signature - the signature to check.
 * @returns true only for a valid signature by `publicKey` over `data`.
 */
export function verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (
    !(publicKey instanceof Uint8Array) ||
    publicKey.length !== PUBLIC_KEY_LENGTH ||
    !(signature instanceof Uint8Array) ||
    signature.length !== SIGNATURE_LENGTH
  ) {
    return false;
  }
  try {
    const key = createPublicKey({
      key: Buffer.concat([SPKI_PREFIX, publicKey]),
      format: "der",
      type: "spki",
    });
    return cryptoVerify(null, data, key, signature);
  } catch {
    return false;
  }
}
