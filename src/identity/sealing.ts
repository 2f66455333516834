/**
 * Encryption of seeds: the one XChaCha20-Poly1305 construction this daemon uses (for
 * `.hmkey.json` files, for the keystore's seeds under its data key, and for the data key under
 * the key-encryption key in `kek.ts`), and the {@link SeedSealer} that holds the data key.
 *
 * No SQL and no files here: the keystore decides where the metadata and the sealed seeds live.
 *
 * @module
 */

import { randomBytes, timingSafeEqual } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { IdentityError } from "./errors.js";
import { type Argon2idParams, checkArgon2idParams, deriveKeyFromPassword } from "./kdf.js";

/** XChaCha20-Poly1305 nonce length in bytes. */
export const XCHACHA_NONCE_LENGTH = 24;
/** Poly1305 tag length in bytes. */
export const XCHACHA_TAG_LENGTH = 16;

/**
 * Seals `plaintext` under `key` with a fresh random nonce.
 *
 * A random 24-byte nonce is safe for any number of messages under one key, which is why the
 * extended-nonce variant is used everywhere: no counter has to be kept anywhere.
 *
 * @param key - 32-byte key.
 * @param plaintext - what to seal.
 * @param aad - associated data, bound to the result but not stored in it.
 * @returns `nonce(24) || ciphertext || tag(16)`.
 */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const nonce = randomBytes(XCHACHA_NONCE_LENGTH);
  return Buffer.concat([nonce, xchacha20poly1305(key, nonce, aad).encrypt(plaintext)]);
}

/**
 * Opens what {@link seal} produced.
 *
 * @param key - 32-byte key.
 * @param sealed - `nonce(24) || ciphertext || tag(16)`.
 * @param aad - the associated data it was sealed with.
 * @returns the plaintext, or undefined when the key, the AAD or the bytes are wrong (they cannot
 *   be told apart, and callers word that failure for their own context).
 */
export function open(
  key: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Uint8Array | undefined {
  if (sealed.length < XCHACHA_NONCE_LENGTH + XCHACHA_TAG_LENGTH) return undefined;
  try {
    return xchacha20poly1305(key, sealed.subarray(0, XCHACHA_NONCE_LENGTH), aad).decrypt(
      sealed.subarray(XCHACHA_NONCE_LENGTH),
    );
  } catch {
    return undefined;
  }
}

// The verifier is a known plaintext sealed under the derived key: opening it tells a wrong
// passphrase apart at open time, before anything is read or written with that key. Its AAD can
// never equal a seed's AAD, which is always exactly 32 bytes.
const VERIFIER_PLAINTEXT = Buffer.from("seed-daemon keystore verifier v1", "utf8");
const VERIFIER_AAD = Buffer.from("seed-daemon/keystore/verifier", "utf8");

/** Length of a keystore data key, in bytes (an XChaCha20-Poly1305 key). */
export const DATA_KEY_LENGTH = 32;

/**
 * What wraps a data key for storage: the key-encryption key (`Kek` in `kek.ts`). Structural, so
 * that this module needs nothing from the KEK's.
 */
export interface DataKeyWrapper {
  /** Seals a 32-byte data key; the result is what the keystore stores. */
  wrap(dataKey: Uint8Array): Buffer;
}

/**
 * The metadata of a keystore in the format before envelope encryption (seeds sealed directly
 * under the passphrase key); none of it is secret. Only read now, to migrate such a keystore.
 */
export interface SealerMetadata {
  /** Argon2id salt. */
  readonly salt: Uint8Array;
  /** Argon2id costs as JSON text, `{"algorithm":"argon2id","t":3,"m":65536,"p":4}`. */
  readonly kdf: string;
  /** The verifier, sealed under the derived key. */
  readonly verifier: Uint8Array;
}

function corrupted(): IdentityError {
  return new IdentityError("failed_precondition", "keystore encryption metadata is corrupted");
}

function readKdfParams(text: unknown): Argon2idParams {
  let v: unknown;
  try {
    v = typeof text === "string" ? JSON.parse(text) : undefined;
  } catch {
    v = undefined;
  }
  const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
  const params = { t: o.t, m: o.m, p: o.p } as Argon2idParams;
  try {
    checkArgon2idParams(params, "keystore");
  } catch {
    throw corrupted();
  }
  return params;
}

/**
 * The keystore's seed key: the keystore's random data key (or, for a keystore in the format
 * before envelope encryption, its passphrase key). It seals each seed with the seed's raw
 * 32-byte public key as associated data, so a sealed seed copied into another row fails to open
 * instead of signing under the wrong identity. (The public key rather than the name, so renames
 * need no re-encryption.) The key lives only in this object's memory.
 */
export class SeedSealer {
  #key: Uint8Array | null;

  private constructor(key: Uint8Array) {
    this.#key = key;
  }

  /**
   * A sealer on a fresh random data key, for a keystore that has none yet.
   */
  static generate(): SeedSealer {
    return new SeedSealer(new Uint8Array(randomBytes(DATA_KEY_LENGTH)));
  }

  /**
   * A sealer on a data key just unwrapped. The sealer takes the buffer over (and zeroes it on
   * dispose); the caller must not keep using it.
   *
   * @throws {IdentityError} `failed_precondition` when the key is not 32 bytes (damaged metadata).
   */
  static fromDataKey(dataKey: Uint8Array): SeedSealer {
    if (dataKey.length !== DATA_KEY_LENGTH) {
      dataKey.fill(0);
      throw corrupted();
    }
    return new SeedSealer(dataKey);
  }

  /**
   * The data key wrapped by `wrapper` (the KEK), for storage. The key itself is handed only to
   * the wrapper, never returned.
   */
  wrapDataKey(wrapper: DataKeyWrapper): Buffer {
    return wrapper.wrap(this.#live());
  }

  /**
   * Derives the key of a keystore in the format before envelope encryption and checks it
   * against the stored verifier. Only used to migrate such a keystore.
   *
   * @param passphrase - the passphrase to try.
   * @param stored - the stored metadata, as read (untrusted shape).
   * @throws {IdentityError} `failed_precondition`: "wrong keystore passphrase", or damaged
   *   metadata.
   */
  static async unlock(
    passphrase: string,
    stored: { salt: unknown; kdf: unknown; verifier: unknown },
  ): Promise<SeedSealer> {
    const { salt, verifier } = stored;
    if (!(salt instanceof Uint8Array) || !(verifier instanceof Uint8Array)) throw corrupted();
    const params = readKdfParams(stored.kdf);
    const key = await deriveKeyFromPassword(passphrase, salt, params);
    const plain = open(key, verifier, VERIFIER_AAD);
    const ok =
      plain !== undefined &&
      plain.length === VERIFIER_PLAINTEXT.length &&
      timingSafeEqual(plain, VERIFIER_PLAINTEXT);
    if (!ok) {
      key.fill(0);
      throw new IdentityError("failed_precondition", "wrong keystore passphrase");
    }
    return new SeedSealer(key);
  }

  #live(): Uint8Array {
    if (this.#key === null) {
      throw new IdentityError("failed_precondition", "keystore has been disposed");
    }
    return this.#key;
  }

  /**
   * @param seed - 32-byte seed.
   * @param publicKey - its raw 32-byte public key (the AAD).
   * @returns `nonce(24) || ciphertext(32) || tag(16)`.
   */
  sealSeed(seed: Uint8Array, publicKey: Uint8Array): Buffer {
    return seal(this.#live(), seed, publicKey);
  }

  /**
   * @returns the seed, or undefined when the bytes were not sealed for `publicKey` under this
   *   key (a damaged or tampered row).
   */
  openSeed(sealed: Uint8Array, publicKey: Uint8Array): Uint8Array | undefined {
    return open(this.#live(), sealed, publicKey);
  }

  /** Zeroes the key; every later call fails with `failed_precondition`. */
  dispose(): void {
    this.#key?.fill(0);
    this.#key = null;
  }
}
