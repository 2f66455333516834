import { randomBytes, timingSafeEqual } from "node:crypto";
import { constants as fsConstants, promises as fsp } from "node:fs";
import { IdentityError } from "./errors.js";
import {
  type Argon2idParams,
  checkArgon2idParams,
  DEFAULT_ARGON2ID_PARAMS,
  deriveKeyFromPassword,
  KDF_SALT_LENGTH,
} from "./kdf.js";
import { publicKeyFromSeed, SEED_LENGTH } from "./keys.js";
import { parsePrincipal, principalToString } from "./principal.js";
import { open, seal, XCHACHA_NONCE_LENGTH, XCHACHA_TAG_LENGTH } from "./sealing.js";

/**
 * `encryption` member of an encrypted `.hmkey.json`, exactly as Seed writes it:
 *
 * ```json
 * {"kdf":"argon2id",
 *  "argon2":{"memoryCost":65536,"timeCost":3,"parallelism":4,"saltB64":"<base64url, 16 bytes>"},
 *  "cipher":"xchacha20poly1305"}
 * ```
 *
 * The password (UTF-8) goes through Argon2id (version 0x13, 32-byte output; `memoryCost` in
 * KiB) to the key that seals the seed with XChaCha20-Poly1305, without associated data. With it
 * present, `keyB64` is base64url of `nonce(24) || ciphertext(32) || tag(16)`.
 */
export interface HmkeyEncryption {
  readonly kdf: "argon2id";
  readonly argon2: {
    readonly memoryCost: number;
    readonly timeCost: number;
    readonly parallelism: number;
    /** Argon2id salt, base64url without padding. */
    readonly saltB64: string;
  };
  readonly cipher: "xchacha20poly1305";
}

/**
 * `encryption` as this daemon wrote it before it followed Seed's shape. Still read, never
 * written: `{"algorithm":"argon2id+xchacha20poly1305","salt":"<base64url>","t":3,"m":65536,"p":4}`,
 * the same construction under other names.
 */
export interface LegacyHmkeyEncryption extends Argon2idParams {
  readonly algorithm: "argon2id+xchacha20poly1305";
  readonly salt: string;
}

/**
 * Seed's exported key file, `.hmkey.json`.
 *
 * ```json
 * {"createTime":"2025-01-02T03:04:05.000Z","publicKey":"z6Mk…","keyB64":"<base64url>"}
 * ```
 *
 * Without `encryption`, `keyB64` is base64url (no padding) of the 32-byte Ed25519 seed.
 */
export interface HmkeyFile {
  /** When the file was written, ISO 8601 / RFC 3339. */
  readonly createTime: string;
  /** The key's principal, `z6Mk…`. */
  readonly publicKey: string;
  /** The seed, plain or sealed (see {@link HmkeyEncryption}). */
  readonly keyB64: string;
  /** Present only when the file is password-protected. */
  readonly encryption?: HmkeyEncryption;
  /**
   * The key's name in the daemon that wrote the file, so that export, delete and import keep
   * it. This daemon's extension; Seed's tools ignore unknown members.
   */
  readonly name?: string;
}

/** What {@link decodeHmkey} returns. */
export interface DecodedHmkey {
  /** 32-byte Ed25519 seed; the caller should zero it when done. */
  readonly seed: Uint8Array;
  /** 32-byte Ed25519 public key, checked against the seed. */
  readonly publicKey: Uint8Array;
  /** `createTime` as written in the file. */
  readonly createTime: string;
  /** The `name` member, when the file has a string one (not validated as a key name). */
  readonly name?: string;
}

/** Options for {@link encodeHmkey} and {@link HmkeyEncoder.create}. */
export interface EncodeHmkeyOptions {
  /** Value for `createTime`; defaults to now (when the file is encoded). */
  readonly createTime?: Date;
  /** The key's name, written as the `name` member. */
  readonly name?: string;
  /**
   * Argon2id costs for a password-protected file; default {@link DEFAULT_ARGON2ID_PARAMS}.
   * Lower costs are only for a password that is itself a random key (a one-time transfer file
   * whose password never leaves the two processes): stretching adds nothing to 256 random bits.
   */
  readonly argon2?: Argon2idParams;
}

const KDF_NAME = "argon2id";
const CIPHER_NAME = "xchacha20poly1305";
const LEGACY_ALGORITHM = "argon2id+xchacha20poly1305";
const SEALED_LENGTH = XCHACHA_NONCE_LENGTH + SEED_LENGTH + XCHACHA_TAG_LENGTH;

// A key file is a few hundred bytes. The cap stops an import of a huge file (or of /dev/zero)
// from eating memory before JSON.parse even runs.
const MAX_HMKEY_FILE_BYTES = 64 * 1024;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64STD = /^[A-Za-z0-9+/]*={0,2}$/;

function malformed(detail: string): IdentityError {
  return new IdentityError("invalid_argument", `malformed key file: ${detail}`);
}

/**
 * Decodes base64url without padding (what Seed writes), and also standard base64 with or
 * without padding, which other tools write. Rejects anything Node's lenient decoder would
 * silently skip over, and non-canonical trailing bits, so one file has exactly one meaning.
 */
function decodeBase64(text: string, field: string): Buffer {
  if (!(BASE64URL.test(text) || BASE64STD.test(text)) || text.length % 4 === 1) {
    throw malformed(`${field} is not base64`);
  }
  const bytes = Buffer.from(text, "base64");
  const canonical = bytes.toString("base64url");
  const unpadded = text.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  if (canonical !== unpadded) {
    bytes.fill(0);
    throw malformed(`${field} is not canonical base64`);
  }
  return bytes;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Unknown members of `encryption` could change how the key must be derived: refuse to guess. */
function onlyMembers(v: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) throw malformed(`unknown member in ${where}`);
  }
}

function checkedParams(t: unknown, m: unknown, p: unknown, what: string): Argon2idParams {
  if (typeof t !== "number" || typeof m !== "number" || typeof p !== "number") {
    throw malformed(`${what} must be numbers`);
  }
  const params = { t, m, p };
  checkArgon2idParams(params, "malformed key file");
  return params;
}

/** How to derive the file key, whichever shape the file used. */
interface KeyDerivation {
  readonly saltB64: string;
  readonly saltField: string;
  readonly params: Argon2idParams;
}

function parseEncryption(v: unknown): KeyDerivation {
  if (!isPlainObject(v)) throw malformed("encryption must be an object");
  if (Object.hasOwn(v, "algorithm")) return parseLegacyEncryption(v);
  onlyMembers(v, ["kdf", "argon2", "cipher"], "encryption");
  const { kdf, argon2, cipher } = v;
  if (kdf !== KDF_NAME) throw malformed("unsupported key derivation function");
  if (cipher !== CIPHER_NAME) throw malformed("unsupported cipher");
  if (!isPlainObject(argon2)) throw malformed("encryption.argon2 must be an object");
  onlyMembers(argon2, ["memoryCost", "timeCost", "parallelism", "saltB64"], "encryption.argon2");
  const { memoryCost, timeCost, parallelism, saltB64 } = argon2;
  if (typeof saltB64 !== "string") throw malformed("encryption.argon2.saltB64 must be a string");
  const params = checkedParams(timeCost, memoryCost, parallelism, "argon2 costs");
  return { saltB64, saltField: "encryption.argon2.saltB64", params };
}

function parseLegacyEncryption(v: Record<string, unknown>): KeyDerivation {
  onlyMembers(v, ["algorithm", "salt", "t", "m", "p"], "encryption");
  const { algorithm, salt, t, m, p } = v;
  if (algorithm !== LEGACY_ALGORITHM) throw malformed("unsupported encryption algorithm");
  if (typeof salt !== "string") throw malformed("encryption.salt must be a string");
  return {
    saltB64: salt,
    saltField: "encryption.salt",
    params: checkedParams(t, m, p, "encryption t, m and p"),
  };
}

interface ParsedHmkeyFile {
  readonly createTime: string;
  readonly publicKey: string;
  readonly keyB64: string;
  readonly encryption?: KeyDerivation;
  readonly name?: string;
}

function parseHmkeyFile(json: string): ParsedHmkeyFile {
  if (typeof json !== "string" || json.length > MAX_HMKEY_FILE_BYTES) {
    throw malformed("not a key file");
  }
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    // No cause: V8's SyntaxError quotes the input around the error, which may be the key.
    throw malformed("not valid JSON");
  }
  if (!isPlainObject(v)) throw malformed("top level must be an object");
  const { createTime, publicKey, keyB64, encryption } = v;
  const name = typeof v.name === "string" ? { name: v.name } : {};
  if (typeof createTime !== "string" || !RFC3339.test(createTime)) {
    throw malformed("createTime must be an RFC 3339 timestamp");
  }
  if (Number.isNaN(Date.parse(createTime))) throw malformed("createTime is not a valid date");
  if (typeof publicKey !== "string") throw malformed("publicKey must be a string");
  if (typeof keyB64 !== "string") throw malformed("keyB64 must be a string");
  // Unknown top-level members (Seed adds `profile`) are ignored: nothing outside these four can
  // change what the key is.
  if (encryption === undefined) return { createTime, publicKey, keyB64, ...name };
  return { createTime, publicKey, keyB64, encryption: parseEncryption(encryption), ...name };
}

function fileText(file: HmkeyFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

/**
 * Writes `.hmkey.json` documents, with the slow part (Argon2id, about a second) done before
 * any seed is handed over: the keystore derives first and reads the seed only for the
 * microseconds `encode` takes, so a seed never waits in memory on a key derivation.
 *
 * An empty password means "no password", as an unset proto3 string arrives empty.
 */
export class HmkeyEncoder {
  readonly #createTime: Date | undefined;
  readonly #name: string | undefined;
  #key: Uint8Array | null;
  readonly #salt: Buffer | null;
  readonly #params: Argon2idParams;

  private constructor(
    options: EncodeHmkeyOptions,
    key: Uint8Array | null,
    salt: Buffer | null,
    params: Argon2idParams,
  ) {
    this.#createTime = options.createTime;
    this.#name = options.name;
    this.#key = key;
    this.#salt = salt;
    this.#params = params;
  }

  /**
   * @param password - optional password; with one, a fresh random salt is drawn and the file
   *   key derived now.
   * @param options - see {@link EncodeHmkeyOptions}.
   * @param signal - the caller's, for the derivation's queue (see `deriveKeyFromPassword`).
   */
  static async create(
    password?: string,
    options: EncodeHmkeyOptions = {},
    signal?: AbortSignal,
  ): Promise<HmkeyEncoder> {
    const params = options.argon2 ?? DEFAULT_ARGON2ID_PARAMS;
    if (password === undefined || password === "") {
      return new HmkeyEncoder(options, null, null, params);
    }
    checkArgon2idParams(params, "key file encoder");
    const salt = randomBytes(KDF_SALT_LENGTH);
    const key = await deriveKeyFromPassword(password, salt, params, signal);
    return new HmkeyEncoder(options, key, salt, params);
  }

  /**
   * Serialises one seed (sealed under a fresh nonce when there is a password).
   *
   * @param seed - 32-byte Ed25519 seed; not retained.
   * @returns the JSON text (2-space indented, trailing newline).
   * @throws {IdentityError} `invalid_argument` when the seed is not 32 bytes;
   *   `failed_precondition` after {@link HmkeyEncoder.dispose}.
   */
  #nameMember(): { name?: string } {
    return this.#name === undefined ? {} : { name: this.#name };
  }

  encode(seed: Uint8Array): string {
    const publicKey = principalToString(publicKeyFromSeed(seed));
    const createTime = (this.#createTime ?? new Date()).toISOString();
    if (this.#salt === null) {
      // A view, not a copy: a copy of the seed would linger on the heap.
      const keyB64 = Buffer.from(seed.buffer, seed.byteOffset, seed.length).toString("base64url");
      return fileText({ createTime, publicKey, keyB64, ...this.#nameMember() });
    }
    if (this.#key === null) {
      throw new IdentityError("failed_precondition", "key file encoder has been disposed");
    }
    const sealed = seal(this.#key, seed);
    try {
      return fileText({
        createTime,
        publicKey,
        keyB64: sealed.toString("base64url"),
        encryption: {
          kdf: KDF_NAME,
          argon2: {
            memoryCost: this.#params.m,
            timeCost: this.#params.t,
            parallelism: this.#params.p,
            saltB64: this.#salt.toString("base64url"),
          },
          cipher: CIPHER_NAME,
        },
        ...this.#nameMember(),
      });
    } finally {
      sealed.fill(0);
    }
  }

  /** Zeroes the derived file key. */
  dispose(): void {
    this.#key?.fill(0);
    this.#key = null;
  }
}

/**
 * Serialises a seed as a `.hmkey.json` document (see {@link HmkeyEncoder}).
 *
 * @param seed - 32-byte Ed25519 seed.
 * @param password - optional password.
 * @param options - see {@link EncodeHmkeyOptions}.
 * @returns the JSON text (2-space indented, trailing newline).
 * @throws {IdentityError} `invalid_argument` when the seed is not 32 bytes.
 */
export async function encodeHmkey(
  seed: Uint8Array,
  password?: string,
  options: EncodeHmkeyOptions = {},
): Promise<string> {
  const encoder = await HmkeyEncoder.create(password, options);
  try {
    return encoder.encode(seed);
  } finally {
    encoder.dispose();
  }
}

/**
 * Parses and checks a `.hmkey.json` document and recovers its seed.
 *
 * Reads Seed's encrypted shape ({@link HmkeyEncryption}) and the one this daemon wrote before
 * ({@link LegacyHmkeyEncryption}). The shape is checked strictly (types, timestamp, base64,
 * lengths, Argon2id bounds); unknown top-level members are ignored, unknown `encryption`
 * members are not. The seed must produce the file's `publicKey`. A password given for an
 * unencrypted file is ignored.
 *
 * @param json - the file's text.
 * @param password - the file's password, if it has one.
 * @param signal - the caller's, for the derivation's queue (see `deriveKeyFromPassword`).
 * @returns the seed, its public key and the file's `createTime`.
 * @throws {IdentityError} `invalid_argument` for a malformed file, a missing password, or a
 *   `publicKey` that does not match the seed; `permission_denied` for a wrong password (or a
 *   sealed key that was altered: the two cannot be told apart).
 */
export async function decodeHmkey(
  json: string,
  password?: string,
  signal?: AbortSignal,
): Promise<DecodedHmkey> {
  const file = parseHmkeyFile(json);
  const expected = parsePrincipal(file.publicKey);
  const raw = decodeBase64(file.keyB64, "keyB64");
  let seed: Uint8Array;
  if (file.encryption === undefined) {
    if (raw.length !== SEED_LENGTH) {
      raw.fill(0);
      throw malformed(`keyB64 must hold ${SEED_LENGTH} bytes`);
    }
    seed = new Uint8Array(raw);
    raw.fill(0);
  } else {
    if (password === undefined || password === "") {
      throw new IdentityError("invalid_argument", "password required: the key file is encrypted");
    }
    if (raw.length !== SEALED_LENGTH) throw malformed("encrypted keyB64 has the wrong length");
    const { saltB64, saltField, params } = file.encryption;
    const salt = decodeBase64(saltB64, saltField);
    if (salt.length < 8 || salt.length > 64) throw malformed(`${saltField} length`);
    const key = await deriveKeyFromPassword(password, salt, params, signal);
    const opened = open(key, raw);
    key.fill(0);
    if (opened === undefined) {
      throw new IdentityError("permission_denied", "wrong password or corrupted key file");
    }
    seed = opened;
  }
  const publicKey = publicKeyFromSeed(seed);
  if (!timingSafeEqual(publicKey, expected)) {
    seed.fill(0);
    throw new IdentityError("invalid_argument", "key file publicKey does not match its key");
  }
  return {
    seed,
    publicKey,
    createTime: file.createTime,
    ...(file.name !== undefined && { name: file.name }),
  };
}

/**
 * Writes a key file with mode 0600. Refuses to replace an existing file or to follow a symlink
 * at `path`: overwriting a key backup by accident is not recoverable.
 *
 * @param path - destination path.
 * @param contents - output of {@link encodeHmkey}.
 * @throws {IdentityError} `already_exists` when something is already at `path`.
 */
export async function writeHmkeyFile(path: string, contents: string): Promise<void> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(
      path,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
      0o600,
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new IdentityError("already_exists", "a file already exists at the key file path");
    }
    throw err;
  }
  try {
    await handle.writeFile(contents, "utf8");
    // The file is a backup of a secret; make it durable before reporting success.
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Reads a key file for {@link decodeHmkey}, refusing anything that is not a small regular file.
 *
 * @param path - the file to read.
 * @returns its text.
 * @throws {IdentityError} `not_found` when it does not exist; `invalid_argument` when it is not
 *   a regular file or is larger than 64 KiB.
 */
export async function readHmkeyFile(path: string): Promise<string> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new IdentityError("not_found", "key file not found");
    }
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new IdentityError("invalid_argument", "key file is not a file");
    if (stat.size > MAX_HMKEY_FILE_BYTES) {
      throw new IdentityError("invalid_argument", "key file is too large");
    }
    // Read up to one byte past the cap: the size from stat can change under us.
    const buf = Buffer.alloc(MAX_HMKEY_FILE_BYTES + 1);
    try {
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled > MAX_HMKEY_FILE_BYTES) {
        throw new IdentityError("invalid_argument", "key file is too large");
      }
      return buf.toString("utf8", 0, filled);
    } finally {
      buf.fill(0);
    }
  } finally {
    await handle.close();
  }
}
