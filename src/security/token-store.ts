import * as nodeCrypto from "node:crypto";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../config/errors.js";
import { DomainError } from "../errors.js";
import { writeFileAtomic } from "../util/atomic-write.js";
import { AUTH_TOKEN_ENV, WEB_TOKEN_ENV } from "../wire.js";

/** Shortest token accepted from the environment. */
export const MIN_TOKEN_LENGTH = 32;
const MAX_TOKEN_FILE_BYTES = 4096;

/** Node's one-shot hash (20.12 and later), which skips the Hash object of `createHash`. */
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: string, out: "buffer") => Buffer })
  .hash;

/**
 * The SHA-256 digest every bearer token is compared by (the master, web and paired-origin
 * tokens alike), so a request's token is hashed once whatever it is checked against.
 */
export function tokenDigest(value: string): Buffer {
  return oneShotHash !== undefined
    ? oneShotHash("sha256", value, "buffer")
    : createHash("sha256").update(value, "utf8").digest();
}

/**
 * The master bearer token. Only a SHA-256 digest is kept, so the secret itself never sits in a
 * long-lived object that could be logged or serialised by accident.
 */
export class MasterToken {
  readonly #digest: Buffer;

  /** @param token the secret; not retained */
  constructor(token: string) {
    this.#digest = tokenDigest(token);
  }

  /**
   * Constant-time check of a candidate hashed with {@link tokenDigest} (both sides are 32-byte
   * digests, so the candidate's length never leaks).
   */
  verifyDigest(candidate: Buffer): boolean {
    return timingSafeEqual(candidate, this.#digest);
  }

  /** Whether two tokens are the same secret (a web token must never equal the full one). */
  equals(other: MasterToken): boolean {
    return timingSafeEqual(this.#digest, other.#digest);
  }

  toJSON(): string {
    return "[redacted]";
  }
}

/** Where the master token came from. */
export type TokenSource = "env" | "file-created" | "file";

/**
 * Makes sure the data dir exists with mode 0700 and that no other user can write into it
 * (a group/other-writable dir would let them swap the token file or the database).
 */
export function ensurePrivateDir(dir: string, what = "data dir"): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (!st.isDirectory()) throw new ConfigError(`${what} ${dir} is not a directory`);
  if ((st.mode & 0o022) !== 0) {
    throw new ConfigError(
      `${what} ${dir} is writable by group or other users; run: chmod 700 '${dir}'`,
    );
  }
  if (typeof process.getuid === "function" && st.uid !== process.getuid()) {
    throw new ConfigError(`${what} ${dir} is owned by another user`);
  }
}

function checkTokenFileStat(path: string, st: { mode: number; uid: number }): void {
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(
      `token file ${path} is accessible by group or other users; run: chmod 600 '${path}' (or delete it to generate a new token)`,
    );
  }
  if (typeof process.getuid === "function" && st.uid !== process.getuid()) {
    throw new ConfigError(`token file ${path} is owned by another user`);
  }
}

function readTokenFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") {
      throw new ConfigError(`token file ${path} is a symlink; refusing to follow it`);
    }
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(`token file ${path} is not a regular file`);
    checkTokenFileStat(path, st);
    if (st.size > MAX_TOKEN_FILE_BYTES) throw new ConfigError(`token file ${path} is too large`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    const token = buf.subarray(0, off).toString("utf8").trim();
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new ConfigError(
        `token file ${path} holds no valid token (fewer than ${MIN_TOKEN_LENGTH} characters); delete it to generate a new one`,
      );
    }
    return token;
  } finally {
    closeSync(fd);
  }
}

/** A new secret: 32 random bytes, base64url (43 characters). */
function newToken(): string {
  return randomBytes(32).toString("base64url");
}

function createTokenFile(path: string): string | undefined {
  const token = newToken();
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (err) {
    // Another daemon (or the user) created it first: read theirs instead.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return undefined;
    throw err;
  }
  try {
    writeSync(fd, `${token}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return token;
}

/** Where a token comes from: one environment variable, else one file. */
interface TokenOrigin {
  /** Name of the environment variable, for messages. */
  readonly envName: string;
  readonly envToken: string | undefined;
  readonly tokenPath: string;
  readonly dataDir: string;
}

/**
 * Loads a token: the environment variable wins (no file is written); otherwise the token file
 * is read, or created once with O_EXCL|O_NOFOLLOW and mode 0600.
 * Refuses (ConfigError) a short env token, a symlinked or group/other-accessible file, and a
 * group/other-writable directory.
 */
function loadToken(opts: TokenOrigin): { token: MasterToken; source: TokenSource } {
  ensurePrivateDir(opts.dataDir);
  if (opts.envToken !== undefined) {
    const t = opts.envToken.trim();
    if (t.length < MIN_TOKEN_LENGTH) {
      throw new ConfigError(
        `${opts.envName} is shorter than ${MIN_TOKEN_LENGTH} characters; use a random value, e.g. openssl rand -base64 32`,
      );
    }
    return { token: new MasterToken(t), source: "env" };
  }
  const dir = dirname(opts.tokenPath);
  if (dir !== opts.dataDir) ensurePrivateDir(dir, "token file directory");
  let st: ReturnType<typeof lstatSync> | undefined;
  try {
    st = lstatSync(opts.tokenPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (st?.isSymbolicLink()) {
    throw new ConfigError(`token file ${opts.tokenPath} is a symlink; refusing to follow it`);
  }
  if (st === undefined) {
    const created = createTokenFile(opts.tokenPath);
    if (created !== undefined) return { token: new MasterToken(created), source: "file-created" };
  }
  return { token: new MasterToken(readTokenFile(opts.tokenPath)), source: "file" };
}

/**
 * Why the full token was not rotated. The message names a path or a variable, never a token, so
 * it may be shown to the caller and logged.
 */
export class TokenRotationError extends DomainError<"failed_precondition"> {
  override readonly name = "TokenRotationError";
}

/** What a rotation did: where the new token is. Never the token itself. */
export interface TokenRotation {
  /** The file that now holds the new token. */
  readonly tokenPath: string;
}

/**
 * The full token as a running daemon holds it: checked like a {@link MasterToken}, and, when it
 * came from the token file, replaceable while the daemon runs ({@link rotate}). This object is
 * the only holder of the full token; others get its operations (verify, rotate), never the
 * secret.
 */
export class FullToken {
  #current: MasterToken;
  /** The token file, or undefined when the token comes from the environment. */
  readonly #file: { readonly path: string; readonly dataDir: string } | undefined;

  /**
   * @param token - the current token; not retained
   * @param file - its file, or undefined for a token from the environment (never rotated)
   */
  constructor(token: MasterToken, file: { path: string; dataDir: string } | undefined) {
    this.#current = token;
    this.#file = file;
  }

  /** Constant-time check against the current token (see {@link MasterToken.verifyDigest}). */
  verifyDigest(candidate: Buffer): boolean {
    return this.#current.verifyDigest(candidate);
  }

  /** Whether `other` is the current token (a web token must never equal the full one). */
  equals(other: MasterToken): boolean {
    return other.equals(this.#current);
  }

  /**
   * Replaces the token with a new random one (32 bytes, base64url, as on first start): written to
   * a temp file in the same directory, fsynced and renamed over the token file (mode `0600`), then
   * swapped in memory, so the old token is refused from the next check on. Synchronous, so no
   * request is checked halfway. The checks of start-up apply first: the data dir and the token
   * file's directory are private and ours, and the token file, when present, is a regular file of
   * ours, not a symlink. Its permission bits are not checked: a file others could read is exactly
   * what a rotation should replace, and the new one is `0600`.
   *
   * @throws TokenRotationError (`failed_precondition`) when the token comes from the environment,
   *   when a check fails, or when the file cannot be written; the old token then still works.
   */
  rotate(): TokenRotation {
    const file = this.#file;
    if (file === undefined) {
      throw new TokenRotationError(
        "failed_precondition",
        `the full token comes from the environment (${AUTH_TOKEN_ENV}) and cannot be rotated; change the variable and restart the daemon`,
      );
    }
    const { path, dataDir } = file;
    try {
      ensurePrivateDir(dataDir);
      const dir = dirname(path);
      if (dir !== dataDir) ensurePrivateDir(dir, "token file directory");
    } catch (err) {
      if (err instanceof ConfigError) {
        throw new TokenRotationError("failed_precondition", `${err.message}; not rotated`);
      }
      throw err;
    }
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st !== undefined) {
      const refuse = (why: string) =>
        new TokenRotationError("failed_precondition", `token file ${path} ${why}; not rotated`);
      if (st.isSymbolicLink()) throw refuse("is a symlink");
      if (!st.isFile()) throw refuse("is not a regular file");
      if (typeof process.getuid === "function" && st.uid !== process.getuid()) {
        throw refuse("is owned by another user");
      }
    }
    const token = newToken();
    const next = new MasterToken(token);
    try {
      writeFileAtomic(path, `${token}\n`, 0o600);
    } catch (err) {
      // A failure after the rename (the directory fsync) leaves the new token in the file: the
      // file is what clients read, so the daemon follows it.
      if (!this.#fileHolds(path, next)) {
        const code = (err as NodeJS.ErrnoException).code ?? "error";
        throw new TokenRotationError(
          "failed_precondition",
          `cannot write the token file ${path} (${code}); the old token still works`,
        );
      }
    }
    this.#current = next;
    return { tokenPath: path };
  }

  /** Whether the token file now holds `token` (read with the usual checks). */
  #fileHolds(path: string, token: MasterToken): boolean {
    try {
      return new MasterToken(readTokenFile(path)).equals(token);
    } catch {
      return false;
    }
  }

  toJSON(): string {
    return "[redacted]";
  }
}

/**
 * Loads the master (full) token: `SEED_DAEMON_AUTH_TOKEN`, else the token file (created on first
 * start). See {@link loadToken} for what is refused. A token from the file can be rotated later
 * ({@link FullToken.rotate}); one from the environment cannot.
 */
export function loadMasterToken(opts: {
  envToken: string | undefined;
  tokenPath: string;
  dataDir: string;
}): { token: FullToken; source: TokenSource } {
  const { token, source } = loadToken({ ...opts, envName: AUTH_TOKEN_ENV });
  const file = source === "env" ? undefined : { path: opts.tokenPath, dataDir: opts.dataDir };
  return { token: new FullToken(token, file), source };
}

/**
 * Loads the web token, which a web server in front of the daemon holds instead of the full
 * token: `SEED_DAEMON_WEB_TOKEN`, else `--web-token-path` (created `0600` when missing, so a web
 * server sharing the volume can read it). Neither set: there is no web token.
 */
export function loadWebToken(opts: {
  envToken: string | undefined;
  tokenPath: string | undefined;
  dataDir: string;
}): { token: MasterToken; source: TokenSource } | undefined {
  if (opts.envToken === undefined && opts.tokenPath === undefined) return undefined;
  return loadToken({
    envName: WEB_TOKEN_ENV,
    envToken: opts.envToken,
    tokenPath: opts.tokenPath ?? "",
    dataDir: opts.dataDir,
  });
}

/**
 * Reads a token for a client (CLI): env first, then the file, with the same file checks as the
 * daemon so a client never sends a token someone else could have planted.
 */
export function readClientToken(env: NodeJS.ProcessEnv, tokenPath: string): string {
  const fromEnv = env[AUTH_TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return fromEnv.trim();
  const st = lstatSync(tokenPath, { throwIfNoEntry: false });
  if (st === undefined) {
    throw new ConfigError(
      `no token: set SEED_DAEMON_AUTH_TOKEN or start the daemon once to create ${tokenPath}`,
    );
  }
  if (st.isSymbolicLink()) throw new ConfigError(`token file ${tokenPath} is a symlink`);
  return readTokenFile(tokenPath);
}
