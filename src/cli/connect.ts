/**
 * The CLI's way to the running daemon (flags, daemon.json, the daemon's own token checks). Not
 * part of `seed-daemon/client` (src/client/index.ts): it uses daemon internals.
 *
 * @module
 */
import { join, resolve } from "node:path";
import {
  createDaemonClients,
  createDaemonTransport,
  type DaemonServiceClients,
} from "../client/transport.js";
import { parseListenAddress } from "../config/address.js";
import { ConfigError } from "../config/errors.js";
import { defaultDataDir } from "../config/paths.js";
import { readClientToken } from "../security/token-store.js";
import { readDaemonFile } from "../server/daemon-file.js";

/** How a client finds the daemon and its token. */
export interface ClientOptions {
  /** Data dir of the daemon (default: env SEED_DAEMON_DATA_DIR, then the per-OS default). */
  dataDir?: string;
  /** `host:port` of the HTTP listener; default: daemon.json in the data dir, then 127.0.0.1:55001. */
  httpAddr?: string;
  /** Token file (default `<data-dir>/auth.token`); SEED_DAEMON_AUTH_TOKEN wins over it. */
  authTokenPath?: string;
}

/** Typed clients for the three services, over Connect on the HTTP/1.1 listener. */
export interface DaemonClients extends DaemonServiceClients {
  readonly baseUrl: string;
}

/** A wildcard bind is reached through loopback: the Host gate accepts loopback names. */
function dialAddress(addr: string): string {
  const parsed = parseListenAddress(addr);
  if (parsed === undefined) throw new ConfigError(`--http-addr: expected host:port, got ${addr}`);
  const { host, port } = parsed;
  if (host === "0.0.0.0") return `127.0.0.1:${port}`;
  if (host === "::") return `[::1]:${port}`;
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Connects to a running daemon: address from the flag, daemon.json or the default; token from
 * SEED_DAEMON_AUTH_TOKEN or the token file (same safety checks as the daemon's).
 */
export function connectToDaemon(
  opts: ClientOptions,
  env: NodeJS.ProcessEnv = process.env,
): DaemonClients {
  const dataDir = resolve(opts.dataDir ?? env.SEED_DAEMON_DATA_DIR ?? defaultDataDir(env));
  const addr = opts.httpAddr ?? readDaemonFile(dataDir)?.httpAddr ?? "127.0.0.1:55001";
  const baseUrl = `http://${dialAddress(addr)}`;
  const tokenPath =
    opts.authTokenPath ?? env.SEED_DAEMON_AUTH_TOKEN_PATH ?? join(dataDir, "auth.token");
  const token = readClientToken(env, resolve(tokenPath));
  return { baseUrl, ...createDaemonClients(createDaemonTransport({ baseUrl, token })) };
}
