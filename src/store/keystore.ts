import { timingSafeEqual } from "node:crypto";
import { IdentityError, isIdentityError } from "../identity/errors.js";
import { decodeHmkey, type EncodeHmkeyOptions, HmkeyEncoder } from "../identity/hmkey.js";
import {
  describeKekSource,
  type Kek,
  type KekDescriptor,
  type KekResolver,
  type KekSourceKind,
  PASSPHRASE_ENV,
  parseKekDescriptor,
  serializeKekDescriptor,
} from "../identity/kek.js";
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

/**
 * What {@link Keystore.open} needs from the KEK side: the KEK of an existing keystore, or a new
 * one for a keystore that has no data key yet. `KekResolver` is the implementation.
 */
export type KekSupplier = Pick<KekResolver, "forExisting" | "forNew">;

/** Options for {@link Keystore.open}. */
export interface KeystoreOptions {
  /** Where the key-encryption key comes from. */
  readonly kek: KekSupplier;
  /**
   * The passphrase of a keystore in the format before envelope encryption (seeds sealed directly
   * under an Argon2id key of `SEED_DAEMON_KEYSTORE_PASSPHRASE`): only used to migrate one.
   */
  readonly legacyPassphrase?: string;
}

/** What the open of a keystore in an older format did to it (see {@link Keystore.open}). */
export interface KeystoreMigration {
  /** The format it was in: plaintext seeds, or seeds sealed under the passphrase key. */
  readonly from: "plaintext" | "passphrase";
  /** How many seeds were sealed again under the new data key. */
  readonly keys: number;
}

/** Longest key name, in Unicode code points. */
export const MAX_KEY_NAME_LENGTH = 128;

/** Environment variable that carries the keystore passphrase; named in error messages. */
export const KEYSTORE_PASSPHRASE_ENV = PASSPHRASE_ENV;

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

/** The data key, wrapped by the KEK (`nonce || ciphertext || tag`). */
const META_DATA_KEY = "keystore.data_key";
/** Where the KEK that wrapped it comes from: a `KekDescriptor` as JSON, no secret. */
const META_KEK = "keystore.kek";
// The format before envelope encryption: seeds sealed directly under an Argon2id key of the
// passphrase. Read only to migrate; deleted by the migration.
const LEGACY_SALT = "keystore.kdf_salt";
const LEGACY_KDF = "keystore.kdf_params";
const LEGACY_VERIFIER = "keystore.verifier";

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

/** The refusal of a KEK that does not open the data key; names sources, never keys. */
function wrongKek(used: KekDescriptor, recorded: KekDescriptor): IdentityError {
  if (used.source === "passphrase") {
    return new IdentityError(
      "failed_precondition",
      `wrong keystore passphrase (${KEYSTORE_PASSPHRASE_ENV}): it does not open the keystore's data key; nothing was changed`,
    );
  }
  return new IdentityError(
    "failed_precondition",
    `wrong KEK: the KEK from ${describeKekSource(used)} does not open the keystore's data key (wrapped by a KEK from ${describeKekSource(recorded)}); nothing was changed`,
  );
}

/**
 * Inside a transaction: seals every plaintext row under `sealer`, and every row sealed under
 * `legacy` (the old passphrase key) again under `sealer`. A legacy row that does not open is
 * left as it is (it is damaged either way, and shows so at load).
 *
 * @returns how many rows were rewritten.
 */
function resealAll(db: Db, sealer: SeedSealer, legacy: SeedSealer | undefined): number {
  const rows = db.prepare<[], KeyRow>("SELECT name, public_key, seed, encrypted FROM keys").all();
  const update = db.prepare("UPDATE keys SET seed = ?, encrypted = 1 WHERE name = ?");
  let count = 0;
  for (const row of rows) {
    try {
      let publicKey: Uint8Array;
      try {
        publicKey = parsePrincipal(row.public_key);
      } catch {
        continue;
      }
      let seed: Uint8Array | undefined;
      if (row.encrypted === 0) seed = new Uint8Array(row.seed);
      else if (legacy !== undefined) seed = legacy.openSeed(row.seed, publicKey);
      if (seed === undefined) continue;
      const sealed = sealer.sealSeed(seed, publicKey);
      seed.fill(0);
      update.run(sealed, row.name);
      sealed.fill(0);
      count++;
    } finally {
      row.seed.fill(0);
    }
  }
  return count;
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
 * **At-rest encryption (envelope).** Every seed is sealed by a {@link SeedSealer}
 * (XChaCha20-Poly1305, each seed bound to its public key) under the keystore's random 32-byte
 * data key. The data key is stored in the `meta` table wrapped by the key-encryption key (KEK,
 * `src/identity/kek.ts`), next to a description of where that KEK comes from (no secret). The
 * data key is unwrapped once, at open; the KEK is dropped right after. There is no plaintext
 * mode: a seed never reaches the disk in the clear.
 *
 * Every change runs in one immediate transaction; every statement is prepared once.
 */
export class Keystore {
  readonly #db: Db;
  readonly #sql: ReturnType<typeof prepareStatements>;
  readonly #sealer: SeedSealer;
  #kek: KekDescriptor;
  readonly #migration: KeystoreMigration | undefined;
  readonly #signingKeys = new Map<string, SigningKey>();
  #disposed = false;

  private constructor(
    db: Db,
    sealer: SeedSealer,
    kek: KekDescriptor,
    migration: KeystoreMigration | undefined,
  ) {
    this.#db = db;
    this.#sql = prepareStatements(db);
    this.#sealer = sealer;
    this.#kek = kek;
    this.#migration = migration;
  }

  #live(): void {
    if (this.#disposed) {
      throw new IdentityError("failed_precondition", "keystore has been disposed");
    }
  }

  /**
   * Opens the keystore on a migrated database.
   *
   * - It has a data key: the KEK is asked for (`forExisting`, from the source recorded with the
   *   data key unless `SEED_DAEMON_KEK_FILE`/`SEED_DAEMON_KEK` are set) and must unwrap it; the
   *   wrong KEK is refused before anything is written. Plaintext rows written by something other
   *   than this class are sealed.
   * - It has none (a new keystore, or one in an older format): a new KEK is asked for
   *   (`forNew`, which stores a created KEK before it returns) and a random data key is wrapped
   *   under it. Existing plaintext seeds, or seeds sealed directly under the passphrase key of
   *   the format before envelope encryption (which needs `legacyPassphrase`, checked against the
   *   stored verifier first), are sealed again under the data key, the old metadata deleted, all
   *   in one transaction: a crash leaves either the old store or the migrated one. Then, with
   *   `secure_delete` on, the WAL is checkpointed and truncated, so no page with a plaintext
   *   seed stays in `seed.db` or its WAL. Copies made earlier (backups) still hold what they
   *   held.
   *
   * Then every key is imported and checked against its public key; a damaged one is left out
   * and every use of it fails with `failed_precondition`.
   *
   * @param db - connection from `openDatabase`.
   * @param options - see {@link KeystoreOptions}.
   * @throws {IdentityError} `failed_precondition` for a wrong KEK or passphrase, a legacy
   *   passphrase keystore without its passphrase, or damaged metadata.
   * @throws {ConfigError} (from the supplier) when a KEK source is missing or unusable.
   */
  static async open(db: Db, options: KeystoreOptions): Promise<Keystore> {
    const keystore = await Keystore.#open(db, options, 0);
    try {
      keystore.#loadAll();
    } catch (err) {
      keystore.dispose();
      throw err;
    }
    return keystore;
  }

  static async #open(db: Db, options: KeystoreOptions, attempt: number): Promise<Keystore> {
    const getMeta = db.prepare<[string], { value: unknown }>(
      "SELECT value FROM meta WHERE key = ?",
    );
    const wrapped = getMeta.get(META_DATA_KEY)?.value;
    if (wrapped !== undefined) {
      const descriptor = parseKekDescriptor(getMeta.get(META_KEK)?.value);
      if (!(wrapped instanceof Uint8Array) || descriptor === undefined) {
        throw new IdentityError("failed_precondition", "keystore encryption metadata is corrupted");
      }
      const kek = await options.kek.forExisting(descriptor);
      let dataKey: Uint8Array | undefined;
      try {
        dataKey = kek.unwrap(wrapped);
      } finally {
        kek.dispose();
      }
      if (dataKey === undefined) throw wrongKek(kek.descriptor, descriptor);
      const keystore = new Keystore(db, SeedSealer.fromDataKey(dataKey), descriptor, undefined);
      try {
        // Rows can only be plaintext here if something other than this class wrote them;
        // sealing them keeps the "no seed in the clear" promise whole.
        keystore.#sealPlaintextRows();
      } catch (err) {
        keystore.dispose();
        throw err;
      }
      return keystore;
    }

    // No data key: a new keystore, or one in an older format to migrate.
    const legacySalt = getMeta.get(LEGACY_SALT)?.value;
    const hasSealedRows =
      db.prepare("SELECT 1 FROM keys WHERE encrypted = 1 LIMIT 1").get() !== undefined;
    let legacy: SeedSealer | undefined;
    if (legacySalt !== undefined) {
      const passphrase = options.legacyPassphrase ?? "";
      if (passphrase === "") {
        throw new IdentityError(
          "failed_precondition",
          `the keystore's seeds are sealed under a keystore passphrase (the format before envelope encryption): set ${KEYSTORE_PASSPHRASE_ENV} to open and migrate them`,
        );
      }
      try {
        legacy = await SeedSealer.unlock(passphrase, {
          salt: legacySalt,
          kdf: getMeta.get(LEGACY_KDF)?.value,
          verifier: getMeta.get(LEGACY_VERIFIER)?.value,
        });
      } catch (err) {
        if (isIdentityError(err) && err.message === "wrong keystore passphrase") {
          throw new IdentityError(
            "failed_precondition",
            `wrong keystore passphrase (${KEYSTORE_PASSPHRASE_ENV}); nothing was changed`,
          );
        }
        throw err;
      }
    } else if (hasSealedRows) {
      throw new IdentityError("failed_precondition", "keystore encryption metadata is missing");
    }

    const made = await options.kek.forNew();
    const sealer = SeedSealer.generate();
    const descriptor = made.kek.descriptor;
    let raced = false;
    let migration: KeystoreMigration | undefined;
    try {
      const wrappedKey = sealer.wrapDataKey(made.kek);
      db.pragma("secure_delete = ON");
      migration = db
        .transaction((): KeystoreMigration | undefined => {
          // Read again under the write lock: another process may have initialised it since.
          if (getMeta.get(META_DATA_KEY) !== undefined) {
            raced = true;
            return undefined;
          }
          const insertMeta = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
          insertMeta.run(META_DATA_KEY, wrappedKey);
          insertMeta.run(META_KEK, serializeKekDescriptor(descriptor));
          const resealed = resealAll(db, sealer, legacy);
          db.prepare("DELETE FROM meta WHERE key IN (?, ?, ?)").run(
            LEGACY_SALT,
            LEGACY_KDF,
            LEGACY_VERIFIER,
          );
          if (legacy !== undefined) return { from: "passphrase", keys: resealed };
          return resealed > 0 ? { from: "plaintext", keys: resealed } : undefined;
        })
        .immediate();
    } catch (err) {
      made.discard();
      sealer.dispose();
      throw err;
    } finally {
      made.kek.dispose();
      legacy?.dispose();
    }
    if (raced) {
      made.discard();
      sealer.dispose();
      if (attempt > 0) {
        throw new IdentityError(
          "failed_precondition",
          "keystore encryption was initialised concurrently; open it again",
        );
      }
      return Keystore.#open(db, options, attempt + 1);
    }
    const keystore = new Keystore(db, sealer, descriptor, migration);
    if (migration !== undefined) keystore.#flushWal();
    return keystore;
  }

  /** Which source the KEK of this keystore comes from, as recorded with its data key. */
  get kekSource(): KekSourceKind {
    return this.#kek.source;
  }

  /** Where the KEK comes from (no secret), as recorded with the data key. */
  get kekDescriptor(): KekDescriptor {
    return this.#kek;
  }

  /** What this open migrated, if the keystore was in an older format. */
  get migration(): KeystoreMigration | undefined {
    return this.#migration;
  }

  /**
   * Wraps the data key under another KEK, in one transaction; the sealed seeds are not
   * touched. The old wrapped data key is overwritten on disk (`secure_delete`, then a WAL
   * checkpoint), so the old KEK opens nothing in this `seed.db` from then on; copies made
   * earlier still open with it.
   *
   * @param next - the new KEK (the caller keeps it, and disposes of it).
   * @returns where the previous KEK came from.
   * @throws {IdentityError} `failed_precondition` when `next` is the KEK in use (it opens the
   *   stored data key), when the stored data key changed since this instance opened it, or once
   *   disposed. Nothing is written then.
   */
  rekey(next: Kek): KekDescriptor {
    this.#live();
    const db = this.#db;
    const previous = this.#kek;
    const wrappedKey = this.#sealer.wrapDataKey(next);
    db.pragma("secure_delete = ON");
    db.transaction(() => {
      const current = db
        .prepare<[string], Buffer>("SELECT value FROM meta WHERE key = ?")
        .pluck()
        .get(META_DATA_KEY);
      if (!(current instanceof Uint8Array)) {
        throw new IdentityError("failed_precondition", "keystore encryption metadata is corrupted");
      }
      const opened = next.unwrap(current);
      if (opened !== undefined) {
        opened.fill(0);
        throw new IdentityError(
          "failed_precondition",
          "the new KEK is the one already in use; nothing was changed",
        );
      }
      const recorded = parseKekDescriptor(
        db.prepare<[string], string>("SELECT value FROM meta WHERE key = ?").pluck().get(META_KEK),
      );
      // Compared in the one serialised form, whatever key order the stored text has.
      if (
        recorded === undefined ||
        serializeKekDescriptor(recorded) !== serializeKekDescriptor(previous)
      ) {
        throw new IdentityError(
          "failed_precondition",
          "the keystore's KEK changed since it was opened; nothing was changed",
        );
      }
      const update = db.prepare("UPDATE meta SET value = ? WHERE key = ?");
      update.run(wrappedKey, META_DATA_KEY);
      update.run(serializeKekDescriptor(next.descriptor), META_KEK);
    }).immediate();
    this.#kek = next.descriptor;
    this.#flushWal();
    return previous;
  }

  /**
   * Forgets every imported key and the data key (zeroed). The instance then refuses everything
   * that needs a seed (register, sign, signers made earlier, export, import); open a new
   * instance to use the keys again. Does not close the database, which the caller owns.
   */
  dispose(): void {
    this.#disposed = true;
    this.#signingKeys.clear();
    this.#sealer.dispose();
  }

  /**
   * Seals every plaintext row in one transaction, then drops the WAL. With nothing to seal it
   * does not write at all.
   */
  #sealPlaintextRows(): void {
    const db = this.#db;
    if (db.prepare("SELECT 1 FROM keys WHERE encrypted = 0 LIMIT 1").get() === undefined) return;
    db.pragma("secure_delete = ON");
    const sealed = db.transaction((): number => resealAll(db, this.#sealer, undefined)).immediate();
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
      seed = this.#sealer.openSeed(row.seed, publicKey);
    } else {
      // Written in the clear by something other than this class since this instance opened
      // (the next open seals it).
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
    const stored = this.#sealer.sealSeed(seed, key.publicKey);
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
          sql.insert.run(name, principal, stored, 1, createTime);
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
   * @param signal - the caller's: a derivation still queued when it aborts never runs.
   * @throws {IdentityError} as `decodeHmkey` and {@link Keystore.register}.
   */
  async importHmkey(
    contents: string,
    password?: string,
    name?: string,
    signal?: AbortSignal,
  ): Promise<NamedKeyInfo> {
    if (name !== undefined) validateKeyName(name);
    this.#live();
    const decoded = await decodeHmkey(contents, password, signal);
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
   * @param signal - the caller's: a derivation still queued when it aborts never runs.
   * @throws {IdentityError} `not_found` when there is no such key (checked before and after the
   *   derivation); `failed_precondition` when it is damaged or the keystore disposed.
   */
  async exportHmkey(
    name: string,
    password?: string,
    options?: EncodeHmkeyOptions,
    signal?: AbortSignal,
  ): Promise<ExportedHmkey> {
    this.#live();
    this.#infoRow(name);
    const encoder = await HmkeyEncoder.create(password, { ...options, name }, signal);
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
