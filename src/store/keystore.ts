import { timingSafeEqual } from "node:crypto";
import { IdentityError } from "../identity/errors.js";
import { decodeHmkey, type EncodeHmkeyOptions, HmkeyEncoder } from "../identity/hmkey.js";
import {
  keyFromMnemonic,
  SEED_LENGTH,
  type SigningKey,
  signingKeyFromSeed,
} from "../identity/keys.js";
import { parsePrincipal, principalToString } from "../identity/principal.js";
import { SeedSealer } from "../identity/sealing.js";
import { quoted } from "../util/text.js";
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

/**
 * A handle that signs with one stored key, for modules that sign on the user's behalf (the
 * document service signs blobs with it) without ever holding the seed.
 */
export interface KeySigner {
  /** The key's principal, `z6Mk…`. */
  readonly principal: string;
  /** The key's raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /**
   * Ed25519 signature over `data`, 64 bytes. Bound to the key, not to its name: it keeps
   * working across a rename and fails with `not_found` once the key is deleted.
   */
  sign(data: Uint8Array): Uint8Array;
}

/** What {@link Keystore.exportHmkey} returns. */
export interface ExportedHmkey {
  /** The exported key. */
  readonly key: NamedKeyInfo;
  /** The `.hmkey.json` text, ready for `writeHmkeyFile`. */
  readonly contents: string;
}

const META_SALT = "keystore.kdf_salt";
const META_KDF = "keystore.kdf_params";
const META_VERIFIER = "keystore.verifier";

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

/**
 * Checks a key name: 1 to 128 code points, no leading or trailing white space, no control,
 * format, private-use or unassigned characters.
 *
 * @param name - candidate name.
 * @throws {IdentityError} `invalid_argument` when the name breaks a rule.
 */
/** True when {@link validateKeyName} accepts `name`. */
export function isValidKeyName(name: string): boolean {
  try {
    validateKeyName(name);
    return true;
  } catch {
    return false;
  }
}

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

function noSuchKey(name: unknown): IdentityError {
  return new IdentityError(
    "not_found",
    `no key named ${quoted(typeof name === "string" ? name : "")}`,
  );
}

function prepareStatements(db: Db) {
  return {
    info: db.prepare<[string], InfoRow>(
      "SELECT name, public_key, create_time FROM keys WHERE name = ?",
    ),
    list: db.prepare<[], InfoRow>("SELECT name, public_key, create_time FROM keys ORDER BY name"),
    principalOf: db.prepare<[string], string>("SELECT public_key FROM keys WHERE name = ?").pluck(),
    rowByName: db.prepare<[string], KeyRow>(
      "SELECT name, public_key, seed, encrypted, create_time FROM keys WHERE name = ?",
    ),
    rowByPrincipal: db.prepare<[string], KeyRow>(
      "SELECT name, public_key, seed, encrypted, create_time FROM keys WHERE public_key = ?",
    ),
    allRows: db.prepare<[], KeyRow>(
      "SELECT name, public_key, seed, encrypted, create_time FROM keys",
    ),
    nameOfPrincipal: db
      .prepare<[string], string>("SELECT name FROM keys WHERE public_key = ?")
      .pluck(),
    insert: db.prepare<[string, string, Buffer, number, number]>(
      "INSERT INTO keys (name, public_key, seed, encrypted, create_time) VALUES (?, ?, ?, ?, ?)",
    ),
    rename: db.prepare<[string, string]>("UPDATE keys SET name = ? WHERE name = ?"),
    delete: db.prepare<[string]>("DELETE FROM keys WHERE name = ?"),
    deleteAll: db.prepare("DELETE FROM keys"),
  };
}

/**
 * The named Ed25519 keys, stored in `seed.db`'s `keys` table, and the only module that ever
 * holds their seeds: callers sign through {@link Keystore.sign} or a {@link KeySigner} and back
 * keys up through {@link Keystore.exportHmkey}.
 *
 * **Signing.** Each key is imported into OpenSSL once and kept, checked once (at open, at
 * register, or when first used if another connection added it) to produce the public key its
 * row names, so a signature costs no key import and no re-check. The cache is keyed by public
 * key, so a rename leaves it valid; delete, deleteAll and dispose drop entries. It assumes this
 * instance is the only writer of the `keys` table while it is open (the daemon is): a row
 * changed behind its back is seen at the next open.
 *
 * **At-rest encryption.** Opened with a passphrase, seeds are sealed by a {@link SeedSealer}
 * (XChaCha20-Poly1305 under an Argon2id key, same costs as `.hmkey.json`, each seed bound to
 * its public key); salt, costs and a verifier live in the `meta` table.
 *
 * Every change runs in one immediate transaction; every statement is prepared once.
 */
export class Keystore {
  readonly #db: Db;
  readonly #sql: ReturnType<typeof prepareStatements>;
  // Fixed at open: dropping the key (dispose) must never turn an encrypted keystore into one
  // that writes plaintext.
  readonly #encrypted: boolean;
  readonly #sealer: SeedSealer | null;
  readonly #signingKeys = new Map<string, SigningKey>();
  #disposed = false;

  private constructor(db: Db, sealer: SeedSealer | null) {
    this.#db = db;
    this.#sql = prepareStatements(db);
    this.#encrypted = sealer !== null;
    this.#sealer = sealer;
  }

  #live(): void {
    if (this.#disposed) {
      throw new IdentityError("failed_precondition", "keystore has been disposed");
    }
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
   * Then every key is imported and checked against its public key; a damaged one is left out
   * and every use of it fails with `failed_precondition`.
   *
   * Deriving the key takes about a second (Argon2id, 64 MiB) and does not block the event loop.
   *
   * @param db - connection from `openDatabase`.
   * @param options - see {@link KeystoreOptions}.
   * @throws {IdentityError} `failed_precondition` for a wrong passphrase ("wrong keystore
   *   passphrase"), a missing passphrase on an encrypted keystore, or damaged metadata.
   */
  static async open(db: Db, options: KeystoreOptions = {}): Promise<Keystore> {
    const keystore = await Keystore.#open(db, options.passphrase ?? "");
    keystore.#loadAll();
    return keystore;
  }

  static async #open(db: Db, passphrase: string): Promise<Keystore> {
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
      const sealer = await SeedSealer.unlock(passphrase, {
        salt,
        kdf: getMeta.get(META_KDF)?.value,
        verifier: getMeta.get(META_VERIFIER)?.value,
      });
      const keystore = new Keystore(db, sealer);
      // Rows can only be plaintext here if they were written by something other than this class;
      // sealing them keeps the "encrypted keystore" promise whole.
      keystore.#sealPlaintextRows();
      return keystore;
    }

    if (hasSealedRows) {
      throw new IdentityError("failed_precondition", "keystore encryption metadata is missing");
    }
    const { sealer, metadata } = await SeedSealer.create(passphrase);
    const keystore = new Keystore(db, sealer);
    const insertMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    try {
      keystore.#sealPlaintextRows(() => {
        // Plain INSERT: if another process initialised encryption since we looked, its salt wins
        // and this open fails instead of silently replacing it.
        insertMeta.run(META_SALT, metadata.salt);
        insertMeta.run(META_KDF, metadata.kdf);
        insertMeta.run(META_VERIFIER, metadata.verifier);
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
   * Forgets every imported key and the derived encryption key (zeroed). The instance then
   * refuses everything that needs a seed (register, sign, signers made earlier, export,
   * import); open a new instance to use the keys again. Does not close the database, which the
   * caller owns.
   */
  dispose(): void {
    this.#disposed = true;
    this.#signingKeys.clear();
    this.#sealer?.dispose();
  }

  /**
   * Seals every plaintext row, plus `extra` writes, in one transaction; then drops the WAL.
   * Without `extra` and with nothing to seal it does not write at all.
   */
  #sealPlaintextRows(extra?: () => void): void {
    const sealer = this.#sealer;
    if (sealer === null) return;
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
          update.run(sealer.sealSeed(row.seed, parsePrincipal(row.public_key)), row.name);
          row.seed.fill(0);
        }
        return rows.length;
      })
      .immediate();
    if (sealed > 0) this.#flushWal();
  }

  /** Imports and checks every stored key; damaged ones stay out (see {@link Keystore.open}). */
  #loadAll(): void {
    for (const row of this.#sql.allRows.all()) {
      try {
        this.#signingKeys.set(
          row.public_key,
          this.#openRow(row, (seed) => seed.fill(0)),
        );
      } catch (err) {
        if (!(err instanceof IdentityError)) throw err;
      }
    }
  }

  /**
   * Recovers a row's seed (decrypting it if sealed), imports it and checks that it produces the
   * row's public key. `use` gets the seed for the length of the call; it is zeroed afterwards.
   *
   * @throws {IdentityError} `failed_precondition` when the row is damaged.
   */
  #openRow(row: KeyRow, use: (seed: Uint8Array) => void): SigningKey {
    const damaged = () =>
      new IdentityError("failed_precondition", `stored key ${quoted(row.name)} is damaged`);
    let publicKey: Uint8Array;
    try {
      publicKey = parsePrincipal(row.public_key);
    } catch {
      row.seed.fill(0);
      throw damaged();
    }
    let seed: Uint8Array | undefined;
    if (row.encrypted === 1) {
      if (this.#sealer === null) {
        row.seed.fill(0);
        // Only reachable if another process encrypted the store after this one opened it.
        throw new IdentityError(
          "failed_precondition",
          `keystore is encrypted: set ${KEYSTORE_PASSPHRASE_ENV}`,
        );
      }
      seed = this.#sealer.openSeed(row.seed, publicKey);
    } else {
      seed = new Uint8Array(row.seed);
    }
    row.seed.fill(0);
    if (seed === undefined) throw damaged();
    try {
      if (seed.length !== SEED_LENGTH) throw damaged();
      const key = signingKeyFromSeed(seed);
      if (!timingSafeEqual(key.publicKey, publicKey)) throw damaged();
      use(seed);
      return key;
    } finally {
      seed.fill(0);
    }
  }

  /** The imported key for a principal, loading it on first use. */
  #signingKey(principal: string): SigningKey {
    this.#live();
    const cached = this.#signingKeys.get(principal);
    if (cached !== undefined) return cached;
    const row = this.#sql.rowByPrincipal.get(principal);
    if (row === undefined) {
      throw new IdentityError("not_found", `the key of ${principal} is not in the keystore`);
    }
    const key = this.#openRow(row, () => {});
    this.#signingKeys.set(principal, key);
    return key;
  }

  /**
   * Stores a new key.
   *
   * @param name - unique name (see {@link validateKeyName}).
   * @param seed - 32-byte Ed25519 seed. It is copied; the caller may zero its buffer afterwards.
   * @returns the stored key's info.
   * @throws {IdentityError} `invalid_argument` for a bad name or seed; `already_exists` when the
   *   name is taken or the same key is already stored under another name (the message says
   *   which); `failed_precondition` once disposed.
   */
  register(name: string, seed: Uint8Array): NamedKeyInfo {
    validateKeyName(name);
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) {
      throw new IdentityError("invalid_argument", `Ed25519 seed must be ${SEED_LENGTH} bytes`);
    }
    this.#live();
    const key = signingKeyFromSeed(seed);
    const principal = principalToString(key.publicKey);
    const sealer = this.#sealer;
    const stored = sealer === null ? Buffer.from(seed) : sealer.sealSeed(seed, key.publicKey);
    const createTime = Date.now();
    const sql = this.#sql;
    try {
      this.#db
        .transaction(() => {
          if (sql.info.get(name) !== undefined) {
            throw new IdentityError("already_exists", `a key named ${quoted(name)} already exists`);
          }
          const other = sql.nameOfPrincipal.get(principal);
          if (other !== undefined) {
            throw new IdentityError(
              "already_exists",
              `public key ${principal} is already registered as ${quoted(other)}`,
            );
          }
          sql.insert.run(name, principal, stored, sealer === null ? 0 : 1, createTime);
        })
        .immediate();
    } finally {
      stored.fill(0);
    }
    this.#signingKeys.set(principal, key);
    return toInfo({ name, public_key: principal, create_time: createTime });
  }

  /**
   * Derives the Seed account key of a mnemonic and stores it (see {@link Keystore.register}).
   * The name is checked first: a bad one should not cost a key derivation.
   *
   * @param name - unique name.
   * @param words - BIP-39 English words.
   * @param passphrase - optional BIP-39 passphrase.
   * @throws {IdentityError} as {@link Keystore.register}, and `invalid_argument` for a bad
   *   mnemonic.
   */
  registerMnemonic(name: string, words: readonly string[], passphrase = ""): NamedKeyInfo {
    validateKeyName(name);
    this.#live();
    const seed = keyFromMnemonic(words, passphrase);
    try {
      return this.register(name, seed);
    } finally {
      seed.fill(0);
    }
  }

  /**
   * Stores the key of a `.hmkey.json` document (Seed's shapes, see `decodeHmkey`).
   *
   * @param contents - the file's text.
   * @param password - its password, if it is encrypted.
   * @param name - the new key's name; defaults to the name the file carries, else its principal.
   * @throws {IdentityError} as `decodeHmkey` and {@link Keystore.register}.
   */
  async importHmkey(contents: string, password?: string, name?: string): Promise<NamedKeyInfo> {
    if (name !== undefined) validateKeyName(name);
    this.#live();
    const decoded = await decodeHmkey(contents, password);
    try {
      // The name the exporting daemon wrote, when it is still a valid name; else the principal.
      const fromFile =
        decoded.name !== undefined && isValidKeyName(decoded.name) ? decoded.name : undefined;
      return this.register(name ?? fromFile ?? principalToString(decoded.publicKey), decoded.seed);
    } finally {
      decoded.seed.fill(0);
    }
  }

  /**
   * Writes a key out as a `.hmkey.json` document, sealed when a password is given. The
   * password's Argon2id derivation runs first; the seed is read afterwards and only for the
   * moment it takes to seal it.
   *
   * @param name - the key's name.
   * @param password - optional password; empty means none.
   * @param options - see `EncodeHmkeyOptions`.
   * @throws {IdentityError} `not_found` when there is no such key (checked before and after the
   *   derivation); `failed_precondition` when it is damaged or the keystore disposed.
   */
  async exportHmkey(
    name: string,
    password?: string,
    options?: EncodeHmkeyOptions,
  ): Promise<ExportedHmkey> {
    this.#live();
    this.#infoRow(name);
    const encoder = await HmkeyEncoder.create(password, { ...options, name });
    try {
      this.#live();
      const row = this.#sql.rowByName.get(name);
      if (row === undefined) throw noSuchKey(name);
      let contents = "";
      this.#openRow(row, (seed) => {
        contents = encoder.encode(seed);
      });
      return { key: toInfo(row), contents };
    } finally {
      encoder.dispose();
    }
  }

  /**
   * Signs `data` with a key.
   *
   * @param name - the key's name.
   * @param data - the message.
   * @returns the 64-byte Ed25519 signature.
   * @throws {IdentityError} `not_found` when there is no such key; `failed_precondition` when
   *   it is damaged or the keystore disposed.
   */
  sign(name: string, data: Uint8Array): Uint8Array {
    this.#live();
    const principal = this.#sql.principalOf.get(name);
    if (principal === undefined) throw noSuchKey(name);
    return this.#signingKey(principal).sign(data);
  }

  /**
   * A {@link KeySigner} for a key, checked now (the key is loaded, so a damaged key fails here
   * rather than at the first signature).
   *
   * @param name - the key's name.
   * @throws {IdentityError} as {@link Keystore.sign}.
   */
  signer(name: string): KeySigner {
    this.#live();
    const principal = this.#sql.principalOf.get(name);
    if (principal === undefined) throw noSuchKey(name);
    const publicKey = this.#signingKey(principal).publicKey;
    return {
      principal,
      publicKey: new Uint8Array(publicKey),
      // Looked up per call, so a deleted key or a disposed keystore stops signing at once.
      sign: (data) => this.#signingKey(principal).sign(data),
    };
  }

  /** All keys, ordered by name. */
  list(): NamedKeyInfo[] {
    return this.#sql.list.all().map(toInfo);
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
    const row = this.#sql.info.get(name);
    if (row === undefined) throw noSuchKey(name);
    return row;
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
    const sql = this.#sql;
    return this.#db
      .transaction((): NamedKeyInfo => {
        const row = this.#infoRow(current);
        if (current === next) return toInfo(row);
        if (sql.info.get(next) !== undefined) {
          throw new IdentityError("already_exists", `a key named ${quoted(next)} already exists`);
        }
        sql.rename.run(next, current);
        return toInfo({ ...row, name: next });
      })
      .immediate();
  }

  /**
   * Deletes a key. Its seed is overwritten in the database (`secure_delete`) and the WAL is
   * checkpointed, so the bytes leave the disk now rather than at some later checkpoint; the
   * imported key is dropped, so no signer made earlier can use it.
   *
   * @param name - the key's name.
   * @returns the deleted key's info (for the audit record).
   * @throws {IdentityError} `not_found` when there is no such key.
   */
  delete(name: string): NamedKeyInfo {
    const info = this.#db
      .transaction((): NamedKeyInfo => {
        const row = this.#infoRow(name);
        this.#sql.delete.run(name);
        return toInfo(row);
      })
      .immediate();
    this.#signingKeys.delete(info.publicKey);
    this.#flushWal();
    return info;
  }

  /**
   * Deletes every key, with the same guarantees as {@link Keystore.delete}.
   *
   * @returns how many keys were deleted.
   */
  deleteAll(): number {
    const count = this.#db.transaction(() => this.#sql.deleteAll.run().changes).immediate();
    this.#signingKeys.clear();
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
