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
import { AUTH_TOKEN_ENV, WEB_TOKEN_ENV } from "../wire.js";

/** Shortest token accepted from the environment. */
export const MIN_TOKEN_LENGTH = 32;
const MAX_TOKEN_FILE_BYTES = 4096;

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/**
 * The master bearer token. Only a SHA-256 digest is kept, so the secret itself never sits in a
 * long-lived object that could be logged or serialised by accident.
 */
export class MasterToken {
  readonly #digest: Buffer;

  /** @param token the secret; not retained */
  constructor(token: string) {
    this.#digest = digest(token);
  }

  /** Constant-time check (both sides hashed to 32 bytes first, so lengths never leak). */
  verify(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.#digest);
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

function createTokenFile(path: string): string | undefined {
  const token = randomBytes(32).toString("base64url");
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
 * Loads the master (full) token: `SEED_DAEMON_AUTH_TOKEN`, else the token file (created on first
 * start). See {@link loadToken} for what is refused.
 */
export function loadMasterToken(opts: {
  envToken: string | undefined;
  tokenPath: string;
  dataDir: string;
}): { token: MasterToken; source: TokenSource } {
  return loadToken({ ...opts, envName: AUTH_TOKEN_ENV });
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
