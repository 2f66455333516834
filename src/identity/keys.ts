import {
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
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

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) {
    throw new IdentityError("invalid_argument", `Ed25519 seed must be ${SEED_LENGTH} bytes`);
  }
}

/** An Ed25519 private key held by OpenSSL, with the public key derived from it. */
export interface SigningKey {
  /** 32-byte public key, derived from the imported private key itself. */
  readonly publicKey: Uint8Array;
  /** Ed25519 (RFC 8032, pure) signature over `data`, 64 bytes. */
  sign(data: Uint8Array): Uint8Array;
}

/**
 * Imports a seed into OpenSSL once, for any number of signatures.
 *
 * JWK rather than PKCS#8 DER: OpenSSL 3 decodes DER through its generic decoder framework,
 * about ten times slower than the raw-key path a JWK takes. A private OKP JWK needs `x` (Node 24
 * refuses one without a valid `x`; Node 20 ignores it), so the public key is computed first by an
 * independent implementation (@noble/curves) and then compared with the one derived from the key
 * OpenSSL holds: the two must agree, and `publicKey` is never taken from the input.
 *
 * The base64url copy of the seed that the JWK needs is a JS string and cannot be zeroed; it is
 * left to the collector, which is one more reason to import a key once and keep it.
 *
 * @param seed - 32-byte Ed25519 seed; not retained (OpenSSL keeps its own copy).
 * @throws {IdentityError} `invalid_argument` when the seed is not 32 bytes or not accepted.
 */
export function signingKeyFromSeed(seed: Uint8Array): SigningKey {
  checkSeed(seed);
  const expected = ed25519.getPublicKey(seed);
  const key = createPrivateKey({
    key: {
      kty: "OKP",
      crv: "Ed25519",
      d: Buffer.from(seed.buffer, seed.byteOffset, seed.length).toString("base64url"),
      x: Buffer.from(expected).toString("base64url"),
    },
    format: "jwk",
  });
  const x = createPublicKey(key).export({ format: "jwk" }).x;
  const publicKey = new Uint8Array(Buffer.from(x ?? "", "base64url"));
  if (publicKey.length !== PUBLIC_KEY_LENGTH || !Buffer.from(publicKey).equals(expected)) {
    throw new IdentityError("invalid_argument", "Ed25519 seed was not accepted");
  }
  return {
    publicKey,
    sign: (data) => cryptoSign(null, data, key),
  };
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
  return signingKeyFromSeed(seed).publicKey;
}

/**
 * Signs `data` with Ed25519 (RFC 8032, pure, no pre-hash). Imports the key for this one call:
 * code that signs repeatedly keeps a {@link signingKeyFromSeed} instead (the keystore does).
 *
 * @param seed - 32-byte Ed25519 seed.
 * @param data - the message.
 * @returns the 64-byte signature.
 * @throws {IdentityError} `invalid_argument` when the seed is not 32 bytes.
 */
export function sign(seed: Uint8Array, data: Uint8Array): Uint8Array {
  return signingKeyFromSeed(seed).sign(data);
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
    return cryptoVerify(null, data, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

// Public keys of recent signers: importing a key costs more than verifying with it, and a busy
// daemon sees the same few signers over and over. Bounded so blobs from fresh keys cannot grow
// memory; Map order gives a cheap LRU.
const PUBLIC_KEY_CACHE_LIMIT = 1024;
const publicKeys = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const x = Buffer.from(publicKey).toString("base64url");
  const hit = publicKeys.get(x);
  if (hit !== undefined) {
    publicKeys.delete(x);
    publicKeys.set(x, hit);
    return hit;
  }
  // JWK for the same reason as signingKeyFromSeed: the DER decoder is the slow path.
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
  if (publicKeys.size >= PUBLIC_KEY_CACHE_LIMIT) {
    const oldest = publicKeys.keys().next();
    if (!oldest.done) publicKeys.delete(oldest.value);
  }
  publicKeys.set(x, key);
  return key;
}
