import { randomBytes, timingSafeEqual } from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { IdentityError } from "../identity/errors.js";
import {
  type Argon2idParams,
  checkArgon2idParams,
  DEFAULT_ARGON2ID_PARAMS,
  deriveKeyFromPassword,
  KDF_SALT_LENGTH,
} from "../identity/kdf.js";
import { publicKeyFromSeed, SEED_LENGTH } from "../identity/keys.js";
import { parsePrincipal, principalToString } from "../identity/principal.js";
import type { Db } from "./db.js";

/** A stored key as the API shows it; never includes the seed. */
export interface NamedKeyInfo {
  /** Local alias, unique in the keystore. */
  readonly name: string;
  /** Principal string, `z6Mk…`. */
  readonly publicKey: string;
  /** Same value as `publicKey`: for an Ed25519 account the account id is the principal. */
  readonly accountId: string;
  /** When the key was registered. */
  readonly createTime: Date;
}

/** Options for {@link Keystore.open}. */
export interface KeystoreOptions {
  /**
   * Passphrase for at-rest encryption of seeds (from `SEED_DAEMON_KEYSTORE_PASSPHRASE`). Empty or
   * absent means none.
   */
  readonly passphrase?: string;
}

/** Longest key name, in Unicode code points. */
export const MAX_KEY_NAME_LENGTH = 128;

/** Environment variable that carries the keystore passphrase; named in error messages. */
export const KEYSTORE_PASSPHRASE_ENV = "SEED_DAEMON_KEYSTORE_PASSPHRASE";

const META_SALT = "keystore.kdf_salt";
const META_KDF = "keystore.kdf_params";
const META_VERIFIER = "keystore.verifier";

// The verifier is a known plaintext sealed under the derived key: decrypting it tells a wrong
// passphrase apart at open time, before anything is read or written with that key. Its AAD can
// never equal a key row's AAD, which is always exactly 32 bytes.
const VERIFIER_PLAINTEXT = Buffer.from("seed-daemon keystore verifier v1", "utf8");
const VERIFIER_AAD = Buffer.from("seed-daemon/keystore/verifier", "utf8");

const NONCE_LENGTH = 24;

// Control, format (bidi overrides, zero-width), surrogate, private-use and unassigned code points,
// plus line/paragraph separators: they make two different names look identical or break the
// line-oriented places names are shown (CLI tables, audit logs).
const FORBIDDEN_NAME_CHARS = /[\p{C}\p{Zl}\p{Zp}]/u;

interface KeyRow {
  name: string;
  public_key: string;
  seed: Buffer;
  encrypted: number;
  create_time: number;
}

type InfoRow = Omit<KeyRow, "seed" | "encrypted">;

function quote(name: string): string {
  return JSON.stringify(name);
}

/**
 * Checks a key name: 1 to 128 code points, no leading or trailing white space, no control,
 * format, private-use or unassigned characters.
 *
 * @param name - candidate name.
 * @throws {IdentityError} `invalid_argument` when the name breaks a rule.
 */
export function validateKeyName(name: string): void {
  if (typeof name !== "string" || name.length === 0) {
    throw new IdentityError("invalid_argument", "key name must not be empty");
  }
  if ([...name].length > MAX_KEY_NAME_LENGTH) {
    throw new IdentityError(
      "invalid_argument",
      `key name must be at most ${MAX_KEY_NAME_LENGTH} characters`,
    );
  }
  if (FORBIDDEN_NAME_CHARS.test(name)) {
    throw new IdentityError("invalid_argument", "key name must contain only printable characters");
  }
  if (name.trim() !== name) {
    throw new IdentityError("invalid_argument", "key name must not start or end with white space");
  }
}

function toInfo(row: InfoRow): NamedKeyInfo {
  return {
    name: row.name,
    publicKey: row.public_key,
    accountId: row.public_key,
    createTime: new Date(row.create_time),
  };
}

function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_LENGTH);
  return Buffer.concat([nonce, xchacha20poly1305(key, nonce, aad).encrypt(plaintext)]);
}

function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  if (sealed.length < NONCE_LENGTH) throw new Error("sealed value too short");
  return xchacha20poly1305(key, sealed.subarray(0, NONCE_LENGTH), aad).decrypt(
    sealed.subarray(NONCE_LENGTH),
  );
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
    throw new IdentityError("failed_precondition", "keystore encryption metadata is corrupted");
  }
  return params;
}

/**
 * The named Ed25519 keys, stored in `seed.db`'s `keys` table.
 *
 * **At-rest encryption.** Opened with a passphrase, seeds are sealed with XChaCha20-Poly1305
 * under a key derived from the passphrase with Argon2id (same costs as `.hmkey.json`; salt,
 * costs and a verifier live in the `meta` table). Each sealed seed is `nonce(24) || ciphertext`
 * with the key's raw 32-byte public key as associated data, so a sealed seed copied into another
 * row fails to open instead of signing under the wrong identity; using the public key rather
 * than the name keeps renames free of re-encryption. The derived key lives only in this
 * instance's memory.
 *
 * Every change runs in one immediate transaction. Seeds are never returned by anything but
 * {@link Keystore.getSeed}.
 */
export class Keystore {
  readonly #db: Db;
  // Fixed at open: dropping the key (dispose) must never turn an encrypted keystore into one
  // that writes plaintext.
  readonly #encrypted: boolean;
  #key: Uint8Array | null;

  private constructor(db: Db, key: Uint8Array | null) {
    this.#db = db;
    this.#encrypted = key !== null;
    this.#key = key;
  }

  /** The derived key, or null in plaintext mode; throws once an encrypted keystore is disposed. */
  #sealingKey(): Uint8Array | null {
    if (this.#encrypted && this.#key === null) {
      throw new IdentityError("failed_precondition", "keystore has been disposed");
    }
    return this.#key;
  }

  /**
   * Opens the keystore on a migrated database.
   *
   * - No passphrase, and the keystore was never encrypted: plaintext mode.
   * - No passphrase, but it is encrypted: refused.
   * - Passphrase, and the keystore is encrypted: the passphrase is checked against the stored
   *   verifier before anything else happens; a wrong one changes nothing on disk.
   * - Passphrase, and the keystore is not yet encrypted: a salt and verifier are created and
   *   every existing plaintext seed is sealed, all in one transaction (so a crash leaves either
   *   the old plaintext store or the fully encrypted one), then the WAL is checkpointed and
   *   truncated so the plaintext pages do not linger in it. Copies of `seed.db` made earlier
   *   (backups, snapshots) still hold the plaintext seeds.
   *
   * Deriving the key takes about a second (Argon2id, 64 MiB) and does not block the event loop.
   *
   * @param db - connection from `openDatabase`.
   * @param options - see {@link KeystoreOptions}.
   * @throws {IdentityError} `failed_precondition` for a wrong passphrase ("wrong keystore
   *   passphrase"), a missing passphrase on an encrypted keystore, or damaged metadata.
   */
  static async open(db: Db, options: KeystoreOptions = {}): Promise<Keystore> {
    const passphrase = options.passphrase ?? "";
    const getMeta = db.prepare<[string], { value: unknown }>(
      "SELECT value FROM meta WHERE key = ?",
    );
    const salt = getMeta.get(META_SALT)?.value;
    const hasSealedRows =
      db.prepare("SELECT 1 FROM keys WHERE encrypted = 1 LIMIT 1").get() !== undefined;

    if (passphrase === "") {
      if (salt !== undefined || hasSealedRows) {
        throw new IdentityError(
          "failed_precondition",
          `keystore is encrypted: set ${KEYSTORE_PASSPHRASE_ENV}`,
        );
      }
      return new Keystore(db, null);
    }

    if (salt !== undefined) {
      const verifier = getMeta.get(META_VERIFIER)?.value;
      if (!(salt instanceof Uint8Array) || !(verifier instanceof Uint8Array)) {
        throw new IdentityError("failed_precondition", "keystore encryption metadata is corrupted");
      }
      const params = readKdfParams(getMeta.get(META_KDF)?.value);
      const key = await deriveKeyFromPassword(passphrase, salt, params);
      let ok = false;
      try {
        const plain = open(key, verifier, VERIFIER_AAD);
        ok =
          plain.length === VERIFIER_PLAINTEXT.length && timingSafeEqual(plain, VERIFIER_PLAINTEXT);
      } catch {
        ok = false;
      }
      if (!ok) {
        key.fill(0);
        throw new IdentityError("failed_precondition", "wrong keystore passphrase");
      }
      const keystore = new Keystore(db, key);
      // Rows can only be plaintext here if they were written by something other than this class;
      // sealing them keeps the "encrypted keystore" promise whole.
      keystore.#sealPlaintextRows();
      return keystore;
    }

    if (hasSealedRows) {
      throw new IdentityError("failed_precondition", "keystore encryption metadata is missing");
    }
    const newSalt = randomBytes(KDF_SALT_LENGTH);
    const key = await deriveKeyFromPassword(passphrase, newSalt, DEFAULT_ARGON2ID_PARAMS);
    const keystore = new Keystore(db, key);
    const insertMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    try {
      keystore.#sealPlaintextRows(() => {
        // Plain INSERT: if another process initialised encryption since we looked, its salt wins
        // and this open fails instead of silently replacing it.
        insertMeta.run(META_SALT, newSalt);
        insertMeta.run(
          META_KDF,
          JSON.stringify({ algorithm: "argon2id", ...DEFAULT_ARGON2ID_PARAMS }),
        );
        insertMeta.run(META_VERIFIER, seal(key, VERIFIER_PLAINTEXT, VERIFIER_AAD));
      });
    } catch (err) {
      keystore.dispose();
      if ((err as { code?: unknown }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new IdentityError(
          "failed_precondition",
          "keystore encryption was initialised concurrently; open it again",
        );
      }
      throw err;
    }
    return keystore;
  }

  /** True when seeds are stored encrypted (the keystore was opened with a passphrase). */
  get encrypted(): boolean {
    return this.#encrypted;
  }

  /**
   * Forgets the derived encryption key (zeroes it). An encrypted keystore then refuses
   * {@link Keystore.register} and {@link Keystore.getSeed}; open a new instance to use it again.
   * Does not close the database, which the caller owns.
   */
  dispose(): void {
    this.#key?.fill(0);
    this.#key = null;
  }

  /**
   * Seals every plaintext row, plus `extra` writes, in one transaction; then drops the WAL.
   * Without `extra` and with nothing to seal it does not write at all.
   */
  #sealPlaintextRows(extra?: () => void): void {
    const key = this.#key;
    if (key === null) return;
    const db = this.#db;
    const anyPlain = () => db.prepare("SELECT 1 FROM keys WHERE encrypted = 0 LIMIT 1").get();
    if (extra === undefined && anyPlain() === undefined) return;
    const sealed = db
      .transaction((): number => {
        extra?.();
        // Read inside the transaction: the write lock makes the set of rows final.
        const rows = db
          .prepare<[], KeyRow>("SELECT name, public_key, seed FROM keys WHERE encrypted = 0")
          .all();
        const update = db.prepare("UPDATE keys SET seed = ?, encrypted = 1 WHERE name = ?");
        for (const row of rows) {
          update.run(seal(key, row.seed, parsePrincipal(row.public_key)), row.name);
          row.seed.fill(0);
        }
        return rows.length;
      })
      .immediate();
    if (sealed > 0) this.#flushWal();
  }

  /**
   * Stores a new key.
   *
   * @param name - unique name (see {@link validateKeyName}).
   * @param seed - 32-byte Ed25519 seed. It is copied; the caller may zero its buffer afterwards.
   * @returns the stored key's info.
   * @throws {IdentityError} `invalid_argument` for a bad name or seed; `already_exists` when the
   *   name is taken or the same key is already stored under another name (the message says
   *   which).
   */
  register(name: string, seed: Uint8Array): NamedKeyInfo {
    validateKeyName(name);
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) {
      throw new IdentityError("invalid_argument", `Ed25519 seed must be ${SEED_LENGTH} bytes`);
    }
    const publicKey = publicKeyFromSeed(seed);
    const principal = principalToString(publicKey);
    const key = this.#sealingKey();
    const stored = key === null ? Buffer.from(seed) : seal(key, seed, publicKey);
    const createTime = Date.now();
    const db = this.#db;
    try {
      db.transaction(() => {
        if (db.prepare("SELECT 1 FROM keys WHERE name = ?").get(name) !== undefined) {
          throw new IdentityError("already_exists", `a key named ${quote(name)} already exists`);
        }
        const other = db
          .prepare<[string], { name: string }>("SELECT name FROM keys WHERE public_key = ?")
          .get(principal);
        if (other !== undefined) {
          throw new IdentityError(
            "already_exists",
            `public key ${principal} is already registered as ${quote(other.name)}`,
          );
        }
        db.prepare(
          "INSERT INTO keys (name, public_key, seed, encrypted, create_time) VALUES (?, ?, ?, ?, ?)",
        ).run(name, principal, stored, key === null ? 0 : 1, createTime);
      }).immediate();
    } finally {
      stored.fill(0);
    }
    return toInfo({ name, public_key: principal, create_time: createTime });
  }

  /** All keys, ordered by name. */
  list(): NamedKeyInfo[] {
    return this.#db
      .prepare<[], InfoRow>("SELECT name, public_key, create_time FROM keys ORDER BY name")
      .all()
      .map(toInfo);
  }

  /**
   * One key's info.
   *
   * @param name - the key's name.
   * @throws {IdentityError} `not_found` when there is no such key.
   */
  get(name: string): NamedKeyInfo {
    return toInfo(this.#infoRow(name));
  }

  #infoRow(name: string): InfoRow {
    const row = this.#db
      .prepare<[string], InfoRow>("SELECT name, public_key, create_time FROM keys WHERE name = ?")
      .get(name);
    if (row === undefined) {
      throw new IdentityError(
        "not_found",
        `no key named ${quote(typeof name === "string" ? name : "")}`,
      );
    }
    return row;
  }

  /**
   * A key's 32-byte seed, decrypted if the keystore is encrypted, and checked to still produce
   * the stored public key.
   *
   * @param name - the key's name.
   * @returns a fresh copy; the caller should zero it when done.
   * @throws {IdentityError} `not_found` when there is no such key; `failed_precondition` when the
   *   stored seed cannot be decrypted or does not match its public key (a damaged keystore).
   */
  getSeed(name: string): Uint8Array {
    const row = this.#db
      .prepare<[string], KeyRow>(
        "SELECT name, public_key, seed, encrypted, create_time FROM keys WHERE name = ?",
      )
      .get(name);
    if (row === undefined) {
      throw new IdentityError(
        "not_found",
        `no key named ${quote(typeof name === "string" ? name : "")}`,
      );
    }
    const damaged = () =>
      new IdentityError("failed_precondition", `stored key ${quote(row.name)} is damaged`);
    let publicKey: Uint8Array;
    try {
      publicKey = parsePrincipal(row.public_key);
    } catch {
      throw damaged();
    }
    let seed: Uint8Array;
    const key = this.#sealingKey();
    if (row.encrypted === 1) {
      if (key === null) {
        // Only reachable if another process encrypted the store after this one opened it.
        throw new IdentityError(
          "failed_precondition",
          `keystore is encrypted: set ${KEYSTORE_PASSPHRASE_ENV}`,
        );
      }
      try {
        seed = open(key, row.seed, publicKey);
      } catch {
        throw damaged();
      } finally {
        row.seed.fill(0);
      }
    } else {
      seed = new Uint8Array(row.seed);
      row.seed.fill(0);
    }
    if (seed.length !== SEED_LENGTH || !timingSafeEqual(publicKeyFromSeed(seed), publicKey)) {
      seed.fill(0);
      throw damaged();
    }
    return seed;
  }

  /**
   * Renames a key. Renaming to the current name is a no-op.
   *
   * @param current - the key's name now.
   * @param next - its new name (see {@link validateKeyName}).
   * @returns the key's info under the new name.
   * @throws {IdentityError} `invalid_argument` for a bad new name; `not_found` when `current`
   *   does not exist; `already_exists` when `next` is taken.
   */
  rename(current: string, next: string): NamedKeyInfo {
    validateKeyName(next);
    const db = this.#db;
    return db
      .transaction((): NamedKeyInfo => {
        const row = this.#infoRow(current);
        if (current === next) return toInfo(row);
        if (db.prepare("SELECT 1 FROM keys WHERE name = ?").get(next) !== undefined) {
          throw new IdentityError("already_exists", `a key named ${quote(next)} already exists`);
        }
        db.prepare("UPDATE keys SET name = ? WHERE name = ?").run(next, current);
        return toInfo({ ...row, name: next });
      })
      .immediate();
  }

  /**
   * Deletes a key. Its seed is overwritten in the database (`secure_delete`) and the WAL is
   * checkpointed, so the bytes leave the disk now rather than at some later checkpoint.
   *
   * @param name - the key's name.
   * @returns the deleted key's info (for the audit record).
   * @throws {IdentityError} `not_found` when there is no such key.
   */
  delete(name: string): NamedKeyInfo {
    const db = this.#db;
    const info = db
      .transaction((): NamedKeyInfo => {
        const row = this.#infoRow(name);
        db.prepare("DELETE FROM keys WHERE name = ?").run(name);
        return toInfo(row);
      })
      .immediate();
    this.#flushWal();
    return info;
  }

  /**
   * Deletes every key, with the same on-disk guarantee as {@link Keystore.delete}.
   *
   * @returns how many keys were deleted.
   */
  deleteAll(): number {
    const db = this.#db;
    const count = db.transaction(() => db.prepare("DELETE FROM keys").run().changes).immediate();
    if (count > 0) this.#flushWal();
    return count;
  }

  /**
   * Until a checkpoint, the main file still holds the old page images (with the plaintext or
   * deleted seed) and the WAL holds the new ones. TRUNCATE copies the new pages over the old
   * and empties the WAL. Best effort: a reader in another connection can hold frames back, and
   * SQLite's automatic checkpoints finish the job later.
   */
  #flushWal(): void {
    this.#db.pragma("wal_checkpoint(TRUNCATE)");
  }
}
