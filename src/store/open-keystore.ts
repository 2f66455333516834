/**
 * Opening `seed.db` and its keystore the way the daemon and `seed-daemon keys rekey` both do:
 * the KEK sources read from the environment (`src/identity/kek.ts`), the database, then the
 * keystore (which migrates an older format). Every failure is one {@link ConfigError} line
 * (exit code 2) that names the file or the source, never a key.
 *
 * @module
 */

import { join } from "node:path";
import { ConfigError } from "../config/errors.js";
import { isIdentityError } from "../identity/errors.js";
import { KekResolver, type KeyringOpener, PASSPHRASE_ENV } from "../identity/kek.js";
import { DATABASE_FILE_NAME, DatabaseVersionError, type Db, openDatabase } from "./db.js";
import { Keystore } from "./keystore.js";

/** Options of {@link openKeystore}. */
export interface OpenKeystoreOptions {
  /** The data dir (it must exist). */
  readonly dataDir: string;
  /** The environment the KEK sources and the legacy passphrase are read from. */
  readonly env: NodeJS.ProcessEnv;
  /** Opens the OS keychain; default the real one (tests pass an in-memory keychain). */
  readonly openKeyring?: KeyringOpener;
  /** Directory of generated KEK files; default the per-OS config dir. */
  readonly configDir?: string;
}

/** An open keystore, with what opened it. */
export interface OpenedKeystore {
  /** The connection; the caller closes it (after disposing the keystore). */
  readonly db: Db;
  readonly keystore: Keystore;
  /** The KEK resolver, for a rekey: new KEKs and retiring the old one. */
  readonly resolver: KekResolver;
  /** One-line warnings for the log (a generated KEK in use, a passphrase set but unused). */
  readonly notices: readonly string[];
}

/**
 * Opens `<dataDir>/seed.db` and the keystore in it. A wrong KEK or passphrase is refused before
 * anything is written; a missing or unusable KEK source is never replaced by a new KEK.
 *
 * @throws {ConfigError} for every failure, one line.
 */
export async function openKeystore(options: OpenKeystoreOptions): Promise<OpenedKeystore> {
  const { dataDir, env } = options;
  const dbPath = join(dataDir, DATABASE_FILE_NAME);
  // Environment problems (both KEK variables set, a bad SEED_DAEMON_KEYCHAIN, a configured KEK
  // that is missing or unsafe) before seed.db is created or touched.
  let resolver: KekResolver;
  try {
    resolver = new KekResolver({
      env,
      dataDir,
      configDir: options.configDir,
      openKeyring: options.openKeyring,
    });
    resolver.preflight();
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new ConfigError(`cannot open the keystore in ${dbPath}: ${err.message}`);
    }
    throw err;
  }
  let db: Db;
  try {
    db = openDatabase(dataDir);
  } catch (err) {
    if (err instanceof DatabaseVersionError) throw new ConfigError(err.message);
    // better-sqlite3 and fs messages name files and SQLite states, never their contents.
    throw new ConfigError(`cannot open ${dbPath}: ${(err as Error)?.message ?? String(err)}`);
  }
  try {
    const keystore = await Keystore.open(db, {
      kek: resolver,
      legacyPassphrase: env[PASSPHRASE_ENV] ?? "",
    });
    return { db, keystore, resolver, notices: resolver.notices };
  } catch (err) {
    db.close();
    const detail =
      err instanceof ConfigError || isIdentityError(err)
        ? err.message
        : ((err as Error)?.message ?? String(err));
    throw new ConfigError(`cannot open the keystore in ${dbPath}: ${detail}`);
  }
}
