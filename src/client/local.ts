/**
 * Finds the daemon running for a data dir, and its token, the way the CLI does: `daemon.json`
 * says where it listens, `SEED_DAEMON_AUTH_TOKEN` or the token file holds the token. Files
 * another user could have planted or swapped are refused with the same checks the daemon applies
 * to its own, so a caller never sends the token to a listener someone else named.
 *
 * Part of `seed-daemon/client`: imports only `src/wire.ts`, `src/gen/` and npm packages.
 *
 * @module
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  type Stats,
  statSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import {
  AUTH_TOKEN_ENV,
  AUTH_TOKEN_PATH_ENV,
  DAEMON_FILE_NAME,
  parseDaemonFile,
  TOKEN_FILE_NAME,
} from "../wire.js";
import { dialUrl } from "./transport.js";

/** The data dir setting the daemon reads (`--data-dir` wins over it). */
const DATA_DIR_ENV = "SEED_DAEMON_DATA_DIR";
/** Shortest token the daemon accepts. */
const MIN_TOKEN_LENGTH = 32;
/** Largest token file or daemon.json read. */
const MAX_FILE_BYTES = 4096;

/** Why {@link readLocalDaemon} failed. */
export type LocalDaemonErrorReason =
  /** No data dir, no `daemon.json`, or one naming a process that is gone. */
  | "not-running"
  /** Neither `SEED_DAEMON_AUTH_TOKEN` nor a token file. */
  | "no-token"
  /** A symlink, a file or dir other users can write (or read, for the token), another owner. */
  | "unsafe"
  /** A `daemon.json`, token file or token that does not have the expected form. */
  | "invalid";

/** A one-line failure of {@link readLocalDaemon}. The message names files, never the token. */
export class LocalDaemonError extends Error {
  override readonly name = "LocalDaemonError";

  /**
   * @param reason what went wrong, for callers that react to it
   * @param message one line that names the file and the fix
   */
  constructor(
    readonly reason: LocalDaemonErrorReason,
    message: string,
  ) {
    super(message);
  }
}

/** Options of {@link readLocalDaemon}. */
export interface ReadLocalDaemonOptions {
  /** The daemon's data dir. Default: `SEED_DAEMON_DATA_DIR` in `env`, then the per-OS default. */
  readonly dataDir?: string;
  /** Where `SEED_DAEMON_*` settings are read from. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Token file. Default: `SEED_DAEMON_AUTH_TOKEN_PATH` in `env`, then `<dataDir>/auth.token`. */
  readonly authTokenPath?: string;
}

/** A running daemon as {@link readLocalDaemon} found it. */
export interface LocalDaemon {
  /** The HTTP/1.1 listener (Connect and gRPC-web), e.g. `http://127.0.0.1:55001`. */
  readonly baseUrl: string;
  /** The h2c listener (gRPC, and Connect / gRPC-web over HTTP/2), e.g. `http://127.0.0.1:55002`. */
  readonly grpcUrl: string;
  /** The full bearer token. Keep it in memory; never log it. */
  readonly token: string;
  readonly pid: number;
  readonly version: string;
}

/** The per-OS default data dir, as the daemon computes it. */
function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const home = env.HOME && env.HOME !== "" ? env.HOME : homedir();
  if (process.platform === "darwin") {
    return join(home, "Library", "Application Support", "seed-daemon");
  }
  if (process.platform === "win32") {
    return join(env.LOCALAPPDATA ?? join(home, "AppData", "Local"), "seed-daemon");
  }
  const xdg = env.XDG_DATA_HOME;
  return join(xdg?.startsWith("/") ? xdg : join(home, ".local", "share"), "seed-daemon");
}

/** Mode bits and owners mean nothing on Windows; the daemon's ACLs are the OS's business there. */
const POSIX = process.platform !== "win32";

function ownedByOther(st: Stats): boolean {
  return POSIX && typeof process.getuid === "function" && st.uid !== process.getuid();
}

/** A dir nobody else may write into (they could swap daemon.json or the token file). */
function checkDir(dir: string, what: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new LocalDaemonError("not-running", `no seed-daemon ${what} at ${dir}`);
    }
    throw err;
  }
  if (!st.isDirectory()) throw new LocalDaemonError("invalid", `${what} ${dir} is not a directory`);
  if (POSIX && (st.mode & 0o022) !== 0) {
    throw new LocalDaemonError(
      "unsafe",
      `${what} ${dir} is writable by group or other users; run: chmod 700 '${dir}'`,
    );
  }
  if (ownedByOther(st)) {
    throw new LocalDaemonError("unsafe", `${what} ${dir} is owned by another user`);
  }
}

/**
 * Reads a small regular file without following a symlink, after `check` has seen its fstat.
 * Undefined when it does not exist.
 */
function readPrivateFile(
  path: string,
  what: string,
  check: (st: Stats) => void,
): string | undefined {
  const lst = lstatSync(path, { throwIfNoEntry: false });
  if (lst === undefined) return undefined;
  if (lst.isSymbolicLink()) {
    throw new LocalDaemonError("unsafe", `${what} ${path} is a symlink; refusing to follow it`);
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") {
      throw new LocalDaemonError("unsafe", `${what} ${path} is a symlink; refusing to follow it`);
    }
    if (code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new LocalDaemonError("unsafe", `${what} ${path} is not a regular file`);
    if (ownedByOther(st)) {
      throw new LocalDaemonError("unsafe", `${what} ${path} is owned by another user`);
    }
    check(st);
    if (st.size > MAX_FILE_BYTES)
      throw new LocalDaemonError("invalid", `${what} ${path} is too large`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readToken(env: NodeJS.ProcessEnv, tokenPath: string): string {
  const fromEnv = env[AUTH_TOKEN_ENV]?.trim();
  if (fromEnv !== undefined && fromEnv !== "") {
    if (fromEnv.length < MIN_TOKEN_LENGTH) {
      throw new LocalDaemonError(
        "invalid",
        `${AUTH_TOKEN_ENV} is shorter than ${MIN_TOKEN_LENGTH} characters, so no daemon accepts it`,
      );
    }
    return fromEnv;
  }
  checkDir(dirname(tokenPath), "token file directory");
  const text = readPrivateFile(tokenPath, "token file", (st) => {
    if (POSIX && (st.mode & 0o077) !== 0) {
      throw new LocalDaemonError(
        "unsafe",
        `token file ${tokenPath} is accessible by group or other users; run: chmod 600 '${tokenPath}'`,
      );
    }
  });
  if (text === undefined) {
    throw new LocalDaemonError(
      "no-token",
      `no token: ${tokenPath} does not exist; set ${AUTH_TOKEN_ENV} to the token the daemon was started with`,
    );
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new LocalDaemonError(
      "invalid",
      `token file ${tokenPath} holds no valid token (fewer than ${MIN_TOKEN_LENGTH} characters)`,
    );
  }
  return token;
}

/**
 * Finds the daemon running for a data dir: its addresses, pid and version from `daemon.json`,
 * and the token from `SEED_DAEMON_AUTH_TOKEN` or the token file.
 *
 * Refuses, like the daemon: a data dir or token dir that group or other users can write or that
 * another user owns; a `daemon.json` or token file that is a symlink, not a regular file, owned by
 * another user, or writable (the token file: accessible at all) by group or other users.
 *
 * @throws {LocalDaemonError} with a one-line message that names the file (never the token) and
 *   a {@link LocalDaemonErrorReason}.
 */
export function readLocalDaemon(opts: ReadLocalDaemonOptions = {}): LocalDaemon {
  const env = opts.env ?? process.env;
  const dataDir = dataDirOf(opts, env);
  checkDir(dataDir, "data dir");

  const daemonPath = join(dataDir, DAEMON_FILE_NAME);
  const text = readPrivateFile(daemonPath, DAEMON_FILE_NAME, (st) => {
    if (POSIX && (st.mode & 0o022) !== 0) {
      throw new LocalDaemonError(
        "unsafe",
        `${daemonPath} is writable by group or other users; refusing to trust it`,
      );
    }
  });
  if (text === undefined) {
    throw new LocalDaemonError(
      "not-running",
      `no seed-daemon is running for ${dataDir} (no ${DAEMON_FILE_NAME})`,
    );
  }
  const info = parseDaemonFile(text);
  const baseUrl = info && dialUrl(info.httpAddr);
  const grpcUrl = info && dialUrl(info.grpcAddr);
  if (info === undefined || baseUrl === undefined || grpcUrl === undefined) {
    throw new LocalDaemonError("invalid", `${daemonPath} is not a seed-daemon ${DAEMON_FILE_NAME}`);
  }
  if (!Number.isSafeInteger(info.pid) || info.pid <= 0 || !isAlive(info.pid)) {
    throw new LocalDaemonError(
      "not-running",
      `no seed-daemon is running for ${dataDir} (${DAEMON_FILE_NAME} names pid ${info.pid}, which has exited)`,
    );
  }

  const token = readToken(env, tokenPathOf(opts, env, dataDir));
  return { baseUrl, grpcUrl, token, pid: info.pid, version: info.version };
}

/** The data dir of {@link ReadLocalDaemonOptions}, resolved as the daemon resolves it. */
function dataDirOf(opts: ReadLocalDaemonOptions, env: NodeJS.ProcessEnv): string {
  const raw = opts.dataDir ?? env[DATA_DIR_ENV] ?? defaultDataDir(env);
  return resolve(raw === "" ? defaultDataDir(env) : raw);
}

/** The token file of {@link ReadLocalDaemonOptions}. */
function tokenPathOf(opts: ReadLocalDaemonOptions, env: NodeJS.ProcessEnv, dataDir: string) {
  const pathFromEnv = env[AUTH_TOKEN_PATH_ENV];
  return resolve(
    opts.authTokenPath ??
      (pathFromEnv !== undefined && pathFromEnv !== ""
        ? pathFromEnv
        : join(dataDir, TOKEN_FILE_NAME)),
  );
}

/**
 * The daemon's current full token, for a client that outlives a token rotation (`seed-daemon
 * token rotate`, the `RotateToken` RPC, `SIGHUP`): pass it as `token` to
 * {@link createDaemonTransport}, which then asks it on every call.
 *
 * The token file is read with the checks of {@link readLocalDaemon}, and read again only when
 * it changed (a rotation renames a new file over it), so a call costs one `lstat`. A token from
 * `SEED_DAEMON_AUTH_TOKEN` cannot be rotated and is returned as it is.
 *
 * @throws {LocalDaemonError} at once when there is no usable token, and from a later call when
 *   the file has become unusable (that call then fails with it).
 */
export function localTokenSource(opts: ReadLocalDaemonOptions = {}): () => string {
  const env = opts.env ?? process.env;
  const dataDir = dataDirOf(opts, env);
  const tokenPath = tokenPathOf(opts, env, dataDir);
  const fromEnv = env[AUTH_TOKEN_ENV]?.trim();
  if (fromEnv !== undefined && fromEnv !== "") {
    const token = readToken(env, tokenPath);
    return () => token;
  }
  const versionOf = () => {
    const st = lstatSync(tokenPath, { throwIfNoEntry: false });
    return st === undefined ? "" : `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.mode}`;
  };
  let version = versionOf();
  let token = readToken(env, tokenPath);
  return () => {
    const now = versionOf();
    if (now !== version) {
      token = readToken(env, tokenPath);
      version = now;
    }
    return token;
  };
}
