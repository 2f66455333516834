import { chmodSync, closeSync, constants as fsConstants, lstatSync, openSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

/** A better-sqlite3 connection to `seed.db`. */
export type Db = Database.Database;

/** File name of the database inside the data dir. */
export const DATABASE_FILE_NAME = "seed.db";

/** How long a statement waits for a lock held by another connection before failing, in ms. */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * A schema migration. It runs inside the transaction that also bumps `user_version`, so a
 * migration either fully applies or not at all; it must not open its own transaction.
 */
export type Migration = (db: Db) => void;

/**
 * All migrations, in order: migration `i` (0-based) takes `user_version` from `i` to `i + 1`.
 * Append only; never edit or reorder one that has shipped.
 */
export const MIGRATIONS: readonly Migration[] = [
  // 1: keys, blobs and keystore metadata.
  (db) => {
    db.exec(`
      CREATE TABLE keys (
        name        TEXT    PRIMARY KEY,
        -- principal string (z6Mk...), the key's identity everywhere else
        public_key  TEXT    NOT NULL UNIQUE,
        -- raw 32-byte seed, or nonce || XChaCha20-Poly1305 ciphertext when encrypted = 1
        seed        BLOB    NOT NULL,
        encrypted   INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
        -- Unix milliseconds
        create_time INTEGER NOT NULL
      );

      CREATE TABLE blobs (
        cid         TEXT    PRIMARY KEY,
        -- multicodec of the block (0x71 dag-cbor, 0x55 raw, ...)
        codec       INTEGER,
        data        BLOB    NOT NULL,
        -- Unix milliseconds
        create_time INTEGER NOT NULL
      );

      -- Small named values owned by one module each, e.g. the keystore's KDF salt and verifier.
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB
      );
    `);
    // The documents and capabilities tables are added by a later migration, together with the
    // code that queries them, so a schema never exists without its owner.
  },
  // 2: blob aliases and the indexes of Changes, Refs, documents and Capabilities (blob-store.ts).
  // `blobs.cid` holds the canonical (blake2b-256) CID of the bytes, so a blob is stored once; every
  // other column naming a blob or a link holds a canonical CID too.
  (db) => {
    db.exec(`
      -- Every CID a blob is served under (its blake2b-256 and sha2-256 CIDs) -> the stored blob.
      CREATE TABLE blob_cids (
        cid  TEXT PRIMARY KEY,
        blob TEXT NOT NULL REFERENCES blobs (cid)
      ) WITHOUT ROWID;

      CREATE TABLE changes (
        cid     TEXT    PRIMARY KEY REFERENCES blobs (cid),
        -- the document's genesis change; a genesis change names itself
        genesis TEXT    NOT NULL,
        -- dep CIDs sorted and joined with '.', '' for a genesis change
        deps    TEXT    NOT NULL,
        ts      INTEGER NOT NULL,
        depth   INTEGER NOT NULL,
        signer  TEXT    NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX changes_by_genesis ON changes (genesis, ts, cid);

      CREATE TABLE refs (
        cid        TEXT    PRIMARY KEY REFERENCES blobs (cid),
        -- the space (principal) and path ('' for home) of the document
        account    TEXT    NOT NULL,
        path       TEXT    NOT NULL,
        genesis    TEXT    NOT NULL,
        -- head CIDs sorted and joined with '.' (the version); '' for a tombstone
        heads      TEXT    NOT NULL,
        generation INTEGER NOT NULL,
        ts         INTEGER NOT NULL,
        signer     TEXT    NOT NULL,
        visibility TEXT    NOT NULL CHECK (visibility IN ('public', 'private'))
      ) WITHOUT ROWID;
      CREATE INDEX refs_by_document ON refs (account, path, generation, ts, cid);
      CREATE INDEX refs_by_genesis ON refs (genesis);

      -- The current Ref of each document: highest generation, then ts, then CID.
      CREATE TABLE documents (
        account    TEXT    NOT NULL,
        path       TEXT    NOT NULL,
        ref        TEXT    NOT NULL REFERENCES refs (cid),
        genesis    TEXT    NOT NULL,
        heads      TEXT    NOT NULL,
        generation INTEGER NOT NULL,
        ts         INTEGER NOT NULL,
        visibility TEXT    NOT NULL CHECK (visibility IN ('public', 'private')),
        deleted    INTEGER NOT NULL CHECK (deleted IN (0, 1)),
        PRIMARY KEY (account, path)
      ) WITHOUT ROWID;

      CREATE TABLE capabilities (
        cid          TEXT    PRIMARY KEY REFERENCES blobs (cid),
        -- the signer, which is the space
        account      TEXT    NOT NULL,
        path         TEXT    NOT NULL,
        delegate     TEXT    NOT NULL,
        role         TEXT,
        label        TEXT,
        audience     TEXT,
        exp          INTEGER,
        no_recursive INTEGER NOT NULL CHECK (no_recursive IN (0, 1)),
        ts           INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX capabilities_by_space ON capabilities (account, path);
      CREATE INDEX capabilities_by_delegate ON capabilities (delegate);
    `);
  },
];

/** Schema version this code writes: the number of migrations. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Thrown when `seed.db` was written by a newer seed-daemon whose schema this one can't read. */
export class DatabaseVersionError extends Error {
  /** `user_version` found in the file. */
  readonly found: number;
  /** Highest version this code knows ({@link SCHEMA_VERSION}). */
  readonly supported: number;

  /**
   * @param found - version in the file.
   * @param supported - version this code knows.
   */
  constructor(found: number, supported: number) {
    super(
      `${DATABASE_FILE_NAME} has schema version ${found}, but this seed-daemon only knows up to ` +
        `${supported}: it was written by a newer seed-daemon; upgrade instead of downgrading`,
    );
    this.name = "DatabaseVersionError";
    this.found = found;
    this.supported = supported;
  }
}

/**
 * Creates the database file with mode 0600 before SQLite sees it: SQLite would create it with
 * 0644 & ~umask, and it holds private keys. Existing files are tightened to 0600 too, and a
 * symlink or non-regular file is refused rather than followed.
 */
function ensurePrivateFile(path: string): void {
  try {
    const st = lstatSync(path);
    if (!st.isFile()) {
      throw new Error(`${path} is not a regular file (a symlink?); refusing to open it`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const fd = openSync(
    path,
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW,
    0o600,
  );
  closeSync(fd);
  chmodSync(path, 0o600);
}

function chmodIfPresent(path: string): void {
  try {
    chmodSync(path, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/**
 * Applies pending migrations, each in its own transaction together with its `user_version`
 * bump, so a crash leaves the database at a well-defined version.
 *
 * @param db - an open connection.
 * @param migrations - the list to apply (tests may pass their own).
 * @throws {DatabaseVersionError} when the file is newer than `migrations`.
 */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > migrations.length) throw new DatabaseVersionError(current, migrations.length);
  for (let version = current; version < migrations.length; version++) {
    const migration = migrations[version] as Migration;
    db.transaction(() => {
      migration(db);
      // user_version lives in the database header, which is part of the transaction.
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

/**
 * Opens (creating if needed) `<dataDir>/seed.db` and brings its schema up to date.
 *
 * The data dir must already exist (it is created 0700 by whoever owns it). The file and its
 * `-wal`/`-shm` companions are kept at mode 0600. Settings:
 * - `journal_mode=WAL`: readers never block the writer;
 * - `synchronous=FULL`: a write acknowledged to a client survives power loss, which WAL's
 *   usual NORMAL does not promise;
 * - `foreign_keys=ON`, `busy_timeout`;
 * - `secure_delete=ON`: a deleted key's seed is overwritten, not left in a free page.
 *
 * @param dataDir - the daemon's data directory.
 * @returns the open connection; the caller closes it.
 * @throws {DatabaseVersionError} when the file was written by a newer seed-daemon.
 */
export function openDatabase(dataDir: string): Db {
  const path = join(dataDir, DATABASE_FILE_NAME);
  ensurePrivateFile(path);
  const db = new Database(path, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    db.pragma("secure_delete = ON");
    migrate(db);
    // SQLite gives -wal/-shm the main file's mode; this is for files left by an older, laxer run.
    chmodIfPresent(`${path}-wal`);
    chmodIfPresent(`${path}-shm`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
