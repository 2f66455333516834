/**
 * The key-encryption key (KEK): where it comes from, and the one object that holds it.
 *
 * The keystore seals every seed under a random data key and stores that data key wrapped by the
 * KEK (envelope encryption). This module finds the KEK, creates one for a new keystore, and
 * hands out a {@link Kek}: an object that wraps and unwraps data keys and never gives its bytes
 * out. Sources, in the order a new keystore picks them:
 *
 * 1. `SEED_DAEMON_KEK_FILE` (a file of 32 bytes in base64, `0600`/`0400`, ours, not a symlink)
 *    or `SEED_DAEMON_KEK` (32 bytes in base64): the Docker or Kubernetes secret.
 * 2. The OS keychain (service `seed-daemon`), unless `SEED_DAEMON_KEYCHAIN=off`: a random KEK
 *    stored there on first start.
 * 3. `SEED_DAEMON_KEYSTORE_PASSPHRASE`, through Argon2id (salt and costs kept in `seed.db`).
 * 4. None of these: a random KEK in a file generated in the per-OS config dir, outside the data
 *    dir, with one warning at start.
 *
 * An existing keystore records (in `seed.db`, no secret) which source wrapped its data key, and
 * is opened with that source; `SEED_DAEMON_KEK_FILE` / `SEED_DAEMON_KEK` win whenever set. A
 * source that is configured or recorded but missing, unreadable, unsafe or of the wrong length is
 * a {@link ConfigError} (exit 2) and never a reason to create a new KEK: a lost KEK is lost keys.
 *
 * No SQL here (the keystore owns `seed.db`); errors name variables and paths, never a key.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readSync,
  realpathSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { ConfigError } from "../config/errors.js";
import { defaultConfigDir } from "../config/paths.js";
import { ensurePrivateDir } from "../security/token-store.js";
import {
  type Argon2idParams,
  checkArgon2idParams,
  DEFAULT_ARGON2ID_PARAMS,
  deriveKeyFromPassword,
  KDF_SALT_LENGTH,
} from "./kdf.js";
import { KEYCHAIN_ENV, type OsKeyring, openOsKeyring } from "./os-keyring.js";
import { open, seal } from "./sealing.js";

/** Environment variable naming a file that holds the KEK (32 bytes, base64). */
export const KEK_FILE_ENV = "SEED_DAEMON_KEK_FILE";
/** Environment variable holding the KEK itself (32 bytes, base64). */
export const KEK_ENV = "SEED_DAEMON_KEK";
/** Environment variable of the keystore passphrase (a KEK source through Argon2id). */
export const PASSPHRASE_ENV = "SEED_DAEMON_KEYSTORE_PASSPHRASE";
export { KEYCHAIN_ENV };
/** Service name of the KEK items in the OS keychain. */
export const KEYCHAIN_SERVICE = "seed-daemon";
/** Length of a KEK, in bytes. */
export const KEK_LENGTH = 32;

/** Largest KEK file read: 32 bytes of base64 plus white space need far less. */
const MAX_KEK_FILE_BYTES = 1024;

/** Associated data of a wrapped data key: it can never open as anything else. */
const DATA_KEY_AAD = Buffer.from("seed-daemon/keystore/data-key/v1", "utf8");

/** The kinds of KEK source, as `GetInfo` and `seed-daemon info` name them. */
export type KekSourceKind = "file" | "env" | "keychain" | "passphrase" | "generated-file";

/** Every {@link KekSourceKind}, in the order a new keystore picks them. */
export const KEK_SOURCE_KINDS: readonly KekSourceKind[] = Object.freeze([
  "file",
  "env",
  "keychain",
  "passphrase",
  "generated-file",
]);

/**
 * Where the KEK of a keystore comes from, as the keystore records it next to its wrapped data
 * key. Holds no secret: paths, a keychain account name, an Argon2id salt and costs.
 */
export type KekDescriptor =
  | { readonly source: "file"; readonly path: string }
  | { readonly source: "env" }
  | { readonly source: "keychain"; readonly account: string }
  | { readonly source: "passphrase"; readonly salt: string; readonly kdf: Argon2idParams }
  | { readonly source: "generated-file"; readonly path: string };

/**
 * A key-encryption key in memory. It wraps and unwraps data keys; its bytes never leave it.
 */
export interface Kek {
  /** Where it came from (no secret). */
  readonly descriptor: KekDescriptor;
  /** `descriptor.source`. */
  readonly source: KekSourceKind;
  /**
   * Seals a data key under the KEK.
   *
   * @returns `nonce(24) || ciphertext || tag(16)`.
   */
  wrap(dataKey: Uint8Array): Buffer;
  /** Opens a wrapped data key, or undefined when this is not the KEK it was wrapped under. */
  unwrap(wrapped: Uint8Array): Uint8Array | undefined;
  /** Zeroes the key; wrap and unwrap fail afterwards. */
  dispose(): void;
}

class KekHolder implements Kek {
  #key: Uint8Array | null;
  readonly descriptor: KekDescriptor;

  constructor(key: Uint8Array, descriptor: KekDescriptor) {
    this.#key = key;
    this.descriptor = descriptor;
  }

  get source(): KekSourceKind {
    return this.descriptor.source;
  }

  #live(): Uint8Array {
    if (this.#key === null) throw new Error("the KEK has been disposed");
    return this.#key;
  }

  wrap(dataKey: Uint8Array): Buffer {
    return seal(this.#live(), dataKey, DATA_KEY_AAD);
  }

  unwrap(wrapped: Uint8Array): Uint8Array | undefined {
    return open(this.#live(), wrapped, DATA_KEY_AAD);
  }

  dispose(): void {
    this.#key?.fill(0);
    this.#key = null;
  }

  toJSON(): string {
    return `[KEK from ${this.descriptor.source}]`;
  }
}

/** One line naming a KEK source for messages: never the key. */
export function describeKekSource(d: KekDescriptor): string {
  switch (d.source) {
    case "file":
      return `${KEK_FILE_ENV} (${d.path})`;
    case "env":
      return KEK_ENV;
    case "keychain":
      return `the OS keychain (service ${KEYCHAIN_SERVICE}, account ${d.account})`;
    case "passphrase":
      return PASSPHRASE_ENV;
    case "generated-file":
      return `the generated KEK file ${d.path}`;
  }
}

/** The text the keystore stores for a descriptor: always the same fields in the same order. */
export function serializeKekDescriptor(d: KekDescriptor): string {
  switch (d.source) {
    case "file":
    case "generated-file":
      return JSON.stringify({ source: d.source, path: d.path });
    case "env":
      return JSON.stringify({ source: d.source });
    case "keychain":
      return JSON.stringify({ source: d.source, account: d.account });
    case "passphrase":
      return JSON.stringify({
        source: d.source,
        salt: d.salt,
        kdf: { t: d.kdf.t, m: d.kdf.m, p: d.kdf.p },
      });
  }
}

/**
 * Reads what {@link serializeKekDescriptor} wrote (untrusted: it comes from `seed.db`).
 *
 * @returns the descriptor, or undefined when the text is not one.
 */
export function parseKekDescriptor(text: unknown): KekDescriptor | undefined {
  let v: unknown;
  try {
    v = typeof text === "string" ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const absolute = (p: unknown): p is string => typeof p === "string" && isAbsolute(p);
  switch (o.source) {
    case "file":
      return absolute(o.path) ? { source: "file", path: o.path } : undefined;
    case "env":
      return { source: "env" };
    case "keychain":
      return typeof o.account === "string" && /^kek-[0-9a-f]{16,64}$/.test(o.account)
        ? { source: "keychain", account: o.account }
        : undefined;
    case "generated-file":
      return absolute(o.path) ? { source: "generated-file", path: o.path } : undefined;
    case "passphrase": {
      const k = (typeof o.kdf === "object" && o.kdf !== null ? o.kdf : {}) as Record<
        string,
        unknown
      >;
      const kdf = { t: k.t, m: k.m, p: k.p } as Argon2idParams;
      try {
        checkArgon2idParams(kdf, "keystore KEK");
      } catch {
        return undefined;
      }
      const salt = typeof o.salt === "string" ? decodeBase64(o.salt) : undefined;
      if (salt === undefined || salt.length < 8 || salt.length > 64) return undefined;
      return { source: "passphrase", salt: o.salt as string, kdf };
    }
    default:
      return undefined;
  }
}

/** Strict base64 (standard or URL-safe alphabet, padding optional); undefined when not. */
function decodeBase64(text: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, text.includes("-") || text.includes("_") ? "base64url" : "base64");
}

/** A 32-byte key from its base64 text (white space around it ignored), or undefined. */
function decodeKek(text: string): Uint8Array | undefined {
  const t = text.trim();
  if (t.length < 43 || t.length > 44) return undefined;
  const bytes = decodeBase64(t);
  try {
    return bytes?.length === KEK_LENGTH ? new Uint8Array(bytes) : undefined;
  } finally {
    bytes?.fill(0);
  }
}

function encodeKek(key: Uint8Array): string {
  return Buffer.from(key).toString("base64");
}

const HOW_TO_MAKE_ONE = "make one with: openssl rand -base64 32";

/** True when `path` is `dir` or inside it (after resolving symlinks of the parts that exist). */
function isInside(path: string, dir: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      // Not there (yet): resolve the parent instead, so a symlinked parent still counts.
      const parent = dirname(p);
      return parent === p ? p : join(real(parent), basename(p));
    }
  };
  const rel = relative(real(resolve(dir)), real(resolve(path)));
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/**
 * Reads a KEK file: not a symlink, a regular file of ours with mode `0600` or `0400`, holding
 * 32 bytes in base64. `what` names it in messages (`SEED_DAEMON_KEK_FILE /run/secrets/x`).
 *
 * @throws {ConfigError} naming the file and what is wrong with it; never its contents.
 */
function readKekFile(path: string, what: string, missingHint: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ConfigError(`${what} does not exist; ${missingHint}`);
    if (code === "ELOOP") throw new ConfigError(`${what} is a symlink; refusing to follow it`);
    if (code === "EACCES") throw new ConfigError(`${what} cannot be read (permission denied)`);
    throw new ConfigError(`${what} cannot be opened (${code ?? "error"})`);
  }
  const buf = Buffer.alloc(MAX_KEK_FILE_BYTES + 1);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(`${what} is not a regular file`);
    const mode = st.mode & 0o777;
    if (mode !== 0o600 && mode !== 0o400) {
      throw new ConfigError(
        `${what} has mode ${mode.toString(8).padStart(4, "0")}; it must be 0600 or 0400 (run: chmod 600 '${path}')`,
      );
    }
    if (typeof process.getuid === "function" && st.uid !== process.getuid()) {
      throw new ConfigError(`${what} is owned by another user (uid ${st.uid})`);
    }
    let off = 0;
    for (;;) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
      if (off > MAX_KEK_FILE_BYTES) throw new ConfigError(`${what} is too large for a KEK`);
    }
    const key = decodeKek(buf.subarray(0, off).toString("latin1"));
    if (key === undefined) {
      throw new ConfigError(`${what} does not hold 32 bytes in base64; ${HOW_TO_MAKE_ONE}`);
    }
    return key;
  } finally {
    buf.fill(0);
    closeSync(fd);
  }
}

/**
 * Creates a KEK file with O_EXCL and no-follow, mode `0600`, fsynced (and its directory), so
 * that the KEK is on disk before any data key is wrapped under it.
 */
function writeNewKekFile(path: string, key: Uint8Array): void {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  const text = Buffer.from(`${encodeKek(key)}\n`, "latin1");
  try {
    let off = 0;
    while (off < text.length) off += writeSync(fd, text, off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(path);
    } catch {
      // The write error is the one to report.
    }
    throw err;
  } finally {
    text.fill(0);
  }
  closeSync(fd);
  if (process.platform !== "win32") {
    const dirFd = openSync(dirname(path), constants.O_RDONLY);
    try {
      fsyncSync(dirFd);
    } catch {
      // Filesystems that cannot fsync a directory: the file itself is synced.
    } finally {
      closeSync(dirFd);
    }
  }
}

/** A new random KEK id: keychain accounts and generated files are named after it. */
function newKekId(): string {
  return randomBytes(8).toString("hex");
}

/** What the OS keychain opener returns (see `openOsKeyring`). */
export type KeyringOpener = (
  env: NodeJS.ProcessEnv,
) => { keyring: OsKeyring } | { keyring: null; reason: string };

/** Options of a {@link KekResolver}. */
export interface KekResolverOptions {
  /** The environment the sources are read from (the daemon's). */
  readonly env: NodeJS.ProcessEnv;
  /** The data dir: neither a generated KEK nor `SEED_DAEMON_KEK_FILE` may be inside it. */
  readonly dataDir: string;
  /** Directory of generated KEK files; default `defaultConfigDir(env)`. */
  readonly configDir?: string;
  /** Opens the OS keychain; default `openOsKeyring`. Tests pass an in-memory keychain. */
  readonly openKeyring?: KeyringOpener;
}

/** A KEK just created for a keystore, and how to take its secret back if it goes unused. */
export interface NewKek {
  readonly kek: Kek;
  /**
   * Removes the secret this call stored (a generated file, a keychain item) because no data
   * key was wrapped under it after all. Best effort; never throws.
   */
  discard(): void;
}

/** Where `keys rekey` takes the new KEK from. */
export type RekeyTarget =
  | { readonly to: "keychain" }
  | { readonly to: "generated-file" }
  | { readonly to: "passphrase"; readonly passphrase: string }
  | { readonly to: "file"; readonly path: string };

/**
 * Finds, creates and retires KEKs for one keystore, from one environment. Every problem with a
 * source is a {@link ConfigError} with a one-line message that names the source, never the key.
 * Warnings meant for the log (one line each) collect in {@link notices}.
 */
export class KekResolver {
  readonly #env: NodeJS.ProcessEnv;
  readonly #dataDir: string;
  readonly #configDir: string;
  readonly #openKeyring: KeyringOpener;
  readonly #keychainOn: boolean;
  #keyring: { keyring: OsKeyring } | { keyring: null; reason: string } | undefined;
  /** One-line warnings for the log: a generated KEK file in use, a passphrase set but unused. */
  readonly notices: string[] = [];

  /**
   * @throws {ConfigError} for an invalid `SEED_DAEMON_KEYCHAIN`, or both `SEED_DAEMON_KEK_FILE`
   *   and `SEED_DAEMON_KEK` set.
   */
  constructor(options: KekResolverOptions) {
    this.#env = options.env;
    this.#dataDir = resolve(options.dataDir);
    this.#configDir = resolve(options.configDir ?? defaultConfigDir(options.env));
    this.#openKeyring = options.openKeyring ?? openOsKeyring;
    const keychain = (options.env[KEYCHAIN_ENV] ?? "").trim().toLowerCase();
    if (keychain !== "" && keychain !== "on" && keychain !== "off") {
      throw new ConfigError(`${KEYCHAIN_ENV}: expected on or off`);
    }
    this.#keychainOn = keychain !== "off";
    if (this.#set(KEK_FILE_ENV) && this.#set(KEK_ENV)) {
      throw new ConfigError(
        `set only one of ${KEK_FILE_ENV} and ${KEK_ENV} (an empty value unsets one)`,
      );
    }
  }

  #set(name: string): boolean {
    const v = this.#env[name];
    return v !== undefined && v !== "";
  }

  get #passphrase(): string {
    return this.#env[PASSPHRASE_ENV] ?? "";
  }

  /**
   * Checks `SEED_DAEMON_KEK_FILE` / `SEED_DAEMON_KEK` when set (readable, safe, 32 bytes), so a
   * start-up without its secret fails before it creates any file. Keeps nothing.
   *
   * @throws {ConfigError} as {@link forNew} would.
   */
  preflight(): void {
    this.#explicit()?.dispose();
  }

  /** The KEK the environment configures explicitly (file or variable), if it does. */
  #explicit(): Kek | undefined {
    const file = this.#env[KEK_FILE_ENV];
    if (file !== undefined && file !== "") {
      const path = resolve(file);
      if (isInside(path, this.#dataDir)) {
        throw new ConfigError(
          `${KEK_FILE_ENV} ${path} is inside the data dir ${this.#dataDir}: a copy of the data dir would hold the key; keep it elsewhere`,
        );
      }
      const key = readKekFile(
        path,
        `${KEK_FILE_ENV} ${path}`,
        "it is configured, so no new KEK is generated (a Docker secret missing from the container?)",
      );
      return new KekHolder(key, { source: "file", path });
    }
    const text = this.#env[KEK_ENV];
    if (text !== undefined && text !== "") {
      const key = decodeKek(text);
      if (key === undefined) {
        throw new ConfigError(`${KEK_ENV} does not hold 32 bytes in base64; ${HOW_TO_MAKE_ONE}`);
      }
      return new KekHolder(key, { source: "env" });
    }
    return undefined;
  }

  /** The OS keychain, opened once; null with a reason when it is off or unreachable. */
  #keychain(): { keyring: OsKeyring } | { keyring: null; reason: string } {
    if (!this.#keychainOn) {
      return { keyring: null, reason: `it is turned off (${KEYCHAIN_ENV}=off)` };
    }
    this.#keyring ??= this.#openKeyring(this.#env);
    return this.#keyring;
  }

  #passphraseUnused(used: KekDescriptor): void {
    if (this.#passphrase !== "" && used.source !== "passphrase") {
      this.notices.push(
        `${PASSPHRASE_ENV} is set but not used: the keystore's KEK comes from ${describeKekSource(used)}`,
      );
    }
  }

  #generatedNotice(path: string, why: string | undefined): void {
    this.notices.push(
      `the keystore's KEK is in the generated file ${path}${why === undefined ? "" : ` (${why})`}: ` +
        `it is outside the data dir, but anyone who can read both has the keys; a better source is ` +
        `${KEK_FILE_ENV} (a Docker or Kubernetes secret), the OS keychain, or ${PASSPHRASE_ENV} (docs/keys.md)`,
    );
  }

  /**
   * The KEK of an existing keystore, whose data key was wrapped under `recorded`:
   * `SEED_DAEMON_KEK_FILE` / `SEED_DAEMON_KEK` when set, else the recorded source. Creates
   * nothing.
   *
   * @throws {ConfigError} when that source is missing, off, unreadable, unsafe or malformed.
   */
  async forExisting(recorded: KekDescriptor): Promise<Kek> {
    const explicit = this.#explicit();
    if (explicit !== undefined) {
      this.#passphraseUnused(explicit.descriptor);
      return explicit;
    }
    const wrappedBy = `the keystore's data key is wrapped by a KEK from ${describeKekSource(recorded)}`;
    switch (recorded.source) {
      case "file":
      case "env":
        throw new ConfigError(`${wrappedBy}: set ${KEK_FILE_ENV} or ${KEK_ENV}`);
      case "keychain": {
        const kc = this.#keychain();
        if (kc.keyring === null) {
          throw new ConfigError(`${wrappedBy}, but the OS keychain is unavailable: ${kc.reason}`);
        }
        let text: string | null;
        try {
          text = kc.keyring.get(KEYCHAIN_SERVICE, recorded.account);
        } catch (err) {
          throw new ConfigError(`${wrappedBy}, which cannot be read: ${(err as Error).message}`);
        }
        if (text === null || text === "") {
          throw new ConfigError(
            `${wrappedBy}, which holds no such item; restore it (a new KEK is never generated for an existing keystore)`,
          );
        }
        const key = decodeKek(text);
        if (key === undefined) {
          throw new ConfigError(`${wrappedBy}, whose item does not hold 32 bytes in base64`);
        }
        this.#passphraseUnused(recorded);
        return new KekHolder(key, recorded);
      }
      case "passphrase": {
        const passphrase = this.#passphrase;
        if (passphrase === "") {
          throw new ConfigError(`${wrappedBy}: set ${PASSPHRASE_ENV}`);
        }
        const salt = decodeBase64(recorded.salt) ?? Buffer.alloc(0);
        const key = await deriveKeyFromPassword(passphrase, salt, recorded.kdf);
        return new KekHolder(key, recorded);
      }
      case "generated-file": {
        const key = readKekFile(
          recorded.path,
          `the generated KEK file ${recorded.path}`,
          "restore it from your backup: the keys in seed.db cannot be opened without it (a new KEK is never generated for an existing keystore)",
        );
        this.#generatedNotice(recorded.path, undefined);
        this.#passphraseUnused(recorded);
        return new KekHolder(key, recorded);
      }
    }
  }

  /**
   * A KEK for a keystore that has no data key yet, from the first source in the order that is
   * configured or available. A keychain item or a generated file is stored (durably) before
   * this returns, so no data key is ever wrapped under a KEK that is not saved yet.
   *
   * @throws {ConfigError} when the configured source is unusable, or no source works.
   */
  async forNew(): Promise<NewKek> {
    const explicit = this.#explicit();
    if (explicit !== undefined) {
      this.#passphraseUnused(explicit.descriptor);
      return { kek: explicit, discard: () => {} };
    }
    const kc = this.#keychain();
    let keychainWhy: string;
    if (kc.keyring !== null) {
      const made = this.#tryKeychain(kc.keyring);
      if ("kek" in made) {
        this.#passphraseUnused(made.kek.descriptor);
        return made;
      }
      keychainWhy = made.reason;
    } else {
      keychainWhy = kc.reason;
    }
    if (this.#passphrase !== "") {
      return { kek: await this.#newPassphraseKek(this.#passphrase), discard: () => {} };
    }
    const { path, ...made } = this.#newGeneratedFile();
    this.#generatedNotice(
      path,
      `none of ${KEK_FILE_ENV}, ${KEK_ENV}, ${PASSPHRASE_ENV} is set, and no OS keychain: ${keychainWhy}`,
    );
    return made;
  }

  /**
   * A new KEK for `keys rekey`, from `target`. Stored (keychain item, generated file) under a
   * new name before this returns; the old one stays where it is until {@link retire}.
   *
   * @throws {ConfigError} when the target source is unusable.
   */
  async replacement(target: RekeyTarget): Promise<NewKek> {
    switch (target.to) {
      case "file": {
        const path = resolve(target.path);
        if (isInside(path, this.#dataDir)) {
          throw new ConfigError(
            `--new-kek-file ${path} is inside the data dir ${this.#dataDir}: a copy of the data dir would hold the key; keep it elsewhere`,
          );
        }
        const key = readKekFile(path, `--new-kek-file ${path}`, HOW_TO_MAKE_ONE);
        return { kek: new KekHolder(key, { source: "file", path }), discard: () => {} };
      }
      case "keychain": {
        const kc = this.#keychain();
        if (kc.keyring === null) {
          throw new ConfigError(`cannot use the OS keychain: ${kc.reason}`);
        }
        const made = this.#tryKeychain(kc.keyring);
        if (!("kek" in made)) throw new ConfigError(`cannot use the OS keychain: ${made.reason}`);
        return made;
      }
      case "passphrase":
        if (target.passphrase === "") throw new ConfigError("the new passphrase is empty");
        return { kek: await this.#newPassphraseKek(target.passphrase), discard: () => {} };
      case "generated-file": {
        const { path: _path, ...made } = this.#newGeneratedFile();
        return made;
      }
    }
  }

  /**
   * Destroys a KEK this daemon created and no keystore uses any more (after a rekey committed):
   * a generated file is removed, a keychain item is overwritten with an empty secret (the
   * keychain interface has no delete). A file or variable of the user's is left alone.
   *
   * @returns a one-line note for the user: what was done, or what is left for them to do.
   */
  retire(old: KekDescriptor): string {
    switch (old.source) {
      case "generated-file":
        try {
          const st = lstatSync(old.path, { throwIfNoEntry: false });
          if (st?.isFile()) unlinkSync(old.path);
          return `removed the old KEK file ${old.path}`;
        } catch (err) {
          return `could not remove the old KEK file ${old.path} (${(err as NodeJS.ErrnoException).code ?? "error"}); delete it yourself`;
        }
      case "keychain": {
        const kc = this.#keychain();
        try {
          if (kc.keyring === null) throw new Error(kc.reason);
          kc.keyring.set(KEYCHAIN_SERVICE, old.account, "");
          return `emptied the old OS keychain item (service ${KEYCHAIN_SERVICE}, account ${old.account}); you may delete it`;
        } catch (err) {
          return `could not empty the old OS keychain item (service ${KEYCHAIN_SERVICE}, account ${old.account}: ${(err as Error).message}); delete it yourself`;
        }
      }
      case "file":
        return `the old KEK in ${old.path} no longer opens the keystore; destroy it (and every copy) once you no longer need old backups`;
      case "env":
        return `the old ${KEK_ENV} no longer opens the keystore; remove it from wherever it is set`;
      case "passphrase":
        return `the old ${PASSPHRASE_ENV} no longer opens the keystore`;
    }
  }

  /** Generates a KEK, stores it in the keychain under a new account and reads it back. */
  #tryKeychain(keyring: OsKeyring): NewKek | { reason: string } {
    const account = `kek-${newKekId()}`;
    const key = new Uint8Array(randomBytes(KEK_LENGTH));
    const text = encodeKek(key);
    try {
      keyring.set(KEYCHAIN_SERVICE, account, text);
      // Read back: a keychain that accepted the write but cannot return it would lose the KEK.
      if (keyring.get(KEYCHAIN_SERVICE, account) !== text) {
        throw new Error("the OS keychain did not return the KEK it was given");
      }
    } catch (err) {
      key.fill(0);
      try {
        keyring.set(KEYCHAIN_SERVICE, account, "");
      } catch {
        // Nothing usable was stored.
      }
      return { reason: `storing a KEK in it failed: ${(err as Error).message}` };
    }
    return {
      kek: new KekHolder(key, { source: "keychain", account }),
      discard: () => {
        try {
          keyring.set(KEYCHAIN_SERVICE, account, "");
        } catch {
          // Best effort: an unused item holds a KEK that wraps nothing.
        }
      },
    };
  }

  async #newPassphraseKek(passphrase: string): Promise<Kek> {
    const salt = randomBytes(KDF_SALT_LENGTH);
    const kdf = { ...DEFAULT_ARGON2ID_PARAMS };
    const key = await deriveKeyFromPassword(passphrase, salt, kdf);
    return new KekHolder(key, { source: "passphrase", salt: salt.toString("base64"), kdf });
  }

  /** Creates `<config dir>/kek-<id>` with a new random KEK. */
  #newGeneratedFile(): NewKek & { path: string } {
    const dir = this.#configDir;
    if (isInside(dir, this.#dataDir)) {
      throw new ConfigError(
        `the KEK directory ${dir} is inside the data dir ${this.#dataDir}, where a generated KEK would travel with every copy of the keys; set ${KEK_FILE_ENV}, ${KEK_ENV} or ${PASSPHRASE_ENV}, or use another data dir`,
      );
    }
    try {
      ensurePrivateDir(dir, "KEK directory");
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(
        `cannot create the KEK directory ${dir} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    const path = join(dir, `kek-${newKekId()}`);
    const key = new Uint8Array(randomBytes(KEK_LENGTH));
    try {
      writeNewKekFile(path, key);
    } catch (err) {
      key.fill(0);
      throw new ConfigError(
        `cannot create the KEK file ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    return {
      path,
      kek: new KekHolder(key, { source: "generated-file", path }),
      discard: () => {
        try {
          unlinkSync(path);
        } catch {
          // Best effort: an unused file holds a KEK that wraps nothing.
        }
      },
    };
  }
}
