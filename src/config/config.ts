import { join, resolve } from "node:path";
import {
  AUTH_TOKEN_PATH_ENV,
  DEFAULT_GRPC_ADDR,
  DEFAULT_HTTP_ADDR,
  TOKEN_FILE_NAME,
  WEB_TOKEN_PATH_ENV,
} from "../wire.js";
import { isLoopbackHost, type ListenAddress, parseListenAddress, parsePort } from "./address.js";
import { ConfigError } from "./errors.js";
import { defaultDataDir } from "./paths.js";

/** Origins every daemon allows: the desktop app's custom scheme and opaque (`null`) origins. */
export const DEFAULT_CORS_ORIGINS: readonly string[] = Object.freeze(["null", "app://seed"]);

/** Log levels pino knows, in the order of verbosity. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The one immutable configuration object of a daemon run. It holds no secret. */
export interface Config {
  /** Directory for the token file, daemon.json, paired origins and the database. */
  readonly dataDir: string;
  /** HTTP/1.1 listener (Connect + gRPC-web). */
  readonly httpAddr: ListenAddress;
  /** h2c listener (native gRPC, plus Connect and gRPC-web over HTTP/2). */
  readonly grpcAddr: ListenAddress;
  /** Extra Host header values, lower-case, `host` or `host:port`. */
  readonly allowedHosts: readonly string[];
  /** Extra browser origins as given; the origin policy normalises them. */
  readonly corsOrigins: readonly string[];
  /** Serve only public data; refuse key operations. */
  readonly publicOnly: boolean;
  readonly logLevel: LogLevel;
  /** Optional JSONL audit file (0600). */
  readonly auditLogPath: string | undefined;
  /** Where the generated token file lives (unused when the token comes from the environment). */
  readonly authTokenPath: string;
  /** File of the web token (reads only), if one is configured by path. */
  readonly webTokenPath: string | undefined;
  /** Largest accepted request body. */
  readonly maxRequestBytes: number;
  /** Most connections each listener holds at once; more are dropped as they arrive. */
  readonly maxConnections: number;
  /** How long an HTTP/2 session may stay open with no request in progress. */
  readonly h2IdleTimeoutMs: number;
  /** Human warnings produced while parsing (deprecated flags, non-loopback binds). */
  readonly warnings: readonly string[];
}

/** Raw option values as commander hands them over (strings, repeatable lists, booleans). */
export interface RawOptions {
  dataDir?: string;
  httpAddr?: string;
  grpcAddr?: string;
  httpPort?: string;
  grpcPort?: string;
  allowedHost?: string[];
  corsOrigin?: string[];
  publicOnly?: boolean;
  logLevel?: string;
  auditLog?: string;
  authTokenPath?: string;
  webTokenPath?: string;
  maxRequestBytes?: string;
  maxConnections?: string;
  /** Hidden (`--h2-idle-timeout-ms`): tests shorten the bound. */
  h2IdleTimeoutMs?: string;
}

const DEFAULT_HTTP = DEFAULT_HTTP_ADDR;
const DEFAULT_GRPC = DEFAULT_GRPC_ADDR;
const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Default of `--max-connections`, per listener. */
export const DEFAULT_MAX_CONNECTIONS = 512;
/** Default bound on an HTTP/2 session with no request in progress. */
export const DEFAULT_H2_IDLE_TIMEOUT_MS = 30_000;

/** A whole number in `[min, max]` for `flag`, or `fallback` when the value is absent. */
function parseCount(
  flag: string,
  value: string | undefined,
  min: number,
  max: number,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`${flag}: expected a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

function splitList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function parseAddrFlag(flag: string, value: string): ListenAddress {
  const addr = parseListenAddress(value);
  if (!addr) throw new ConfigError(`${flag}: expected host:port (for example 127.0.0.1:55001)`);
  return addr;
}

function parseBool(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === "") return undefined;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${flag}: expected true or false`);
}

function parseAllowedHost(value: string): string {
  const v = value.trim().toLowerCase();
  // A Host entry is a name or IP literal with an optional port: nothing that could carry a path,
  // userinfo or a wildcard, so the gate stays an exact string comparison.
  const ok =
    /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?$/.test(v) ||
    /^\[[0-9a-f:.]+\](?::\d{1,5})?$/.test(v);
  if (!ok || v.includes("*")) {
    throw new ConfigError(`--allowed-host: "${value.slice(0, 100)}" is not a host or host:port`);
  }
  return v;
}

/**
 * Builds the Config from flags with environment fallbacks. Flags win over the environment.
 * Throws ConfigError naming the flag for any bad value.
 */
export function resolveConfig(raw: RawOptions, env: NodeJS.ProcessEnv = process.env): Config {
  const warnings: string[] = [];

  const dataDirRaw = raw.dataDir ?? env.SEED_DAEMON_DATA_DIR ?? defaultDataDir(env);
  if (dataDirRaw.trim() === "") throw new ConfigError("--data-dir: must not be empty");
  const dataDir = resolve(dataDirRaw);

  const httpAddr = resolveAddr(
    "--http-addr",
    raw.httpAddr,
    env.SEED_DAEMON_HTTP_ADDR,
    DEFAULT_HTTP,
  );
  const grpcAddr = resolveAddr(
    "--grpc-addr",
    raw.grpcAddr,
    env.SEED_DAEMON_GRPC_ADDR,
    DEFAULT_GRPC,
  );
  let http = httpAddr;
  let grpc = grpcAddr;
  if (raw.httpPort !== undefined) {
    const port = parsePort(raw.httpPort);
    if (port === undefined) throw new ConfigError("--http-port: expected a port number 0-65535");
    http = { host: "127.0.0.1", port };
    warnings.push("--http-port is deprecated: use --http-addr 127.0.0.1:PORT");
  }
  if (raw.grpcPort !== undefined) {
    const port = parsePort(raw.grpcPort);
    if (port === undefined) throw new ConfigError("--grpc-port: expected a port number 0-65535");
    grpc = { host: "127.0.0.1", port };
    warnings.push("--grpc-port is deprecated: use --grpc-addr 127.0.0.1:PORT");
  }
  if (http.port !== 0 && http.port === grpc.port && http.host === grpc.host) {
    throw new ConfigError("--grpc-addr: must differ from --http-addr");
  }
  for (const [flag, addr] of [
    ["--http-addr", http],
    ["--grpc-addr", grpc],
  ] as const) {
    if (!isLoopbackHost(addr.host)) {
      warnings.push(
        `${flag} ${addr.host} is not a loopback address: other machines can reach the daemon (the Host gate and token still apply)`,
      );
    }
  }

  const allowedHosts = [
    ...(raw.allowedHost ?? []),
    ...(raw.allowedHost?.length ? [] : splitList(env.SEED_DAEMON_ALLOWED_HOSTS)),
  ].map(parseAllowedHost);
  const corsOrigins = [
    ...DEFAULT_CORS_ORIGINS,
    ...(raw.corsOrigin ?? []),
    ...(raw.corsOrigin?.length ? [] : splitList(env.SEED_DAEMON_CORS_ORIGINS)),
  ];

  const publicOnly =
    raw.publicOnly ?? parseBool("--public-only", env.SEED_DAEMON_PUBLIC_ONLY) ?? false;

  const logLevelRaw = (raw.logLevel ?? env.SEED_DAEMON_LOG_LEVEL ?? "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevelRaw)) {
    throw new ConfigError(`--log-level: expected one of ${LOG_LEVELS.join(", ")}`);
  }

  const auditRaw = raw.auditLog ?? env.SEED_DAEMON_AUDIT_LOG;
  if (auditRaw !== undefined && auditRaw.trim() === "") {
    throw new ConfigError("--audit-log: must be a file path");
  }
  const tokenPathRaw = raw.authTokenPath ?? env[AUTH_TOKEN_PATH_ENV];
  if (tokenPathRaw !== undefined && tokenPathRaw.trim() === "") {
    throw new ConfigError("--auth-token-path: must be a file path");
  }

  const webTokenPathRaw = raw.webTokenPath ?? env[WEB_TOKEN_PATH_ENV];
  if (webTokenPathRaw !== undefined && webTokenPathRaw.trim() === "") {
    throw new ConfigError("--web-token-path: must be a file path");
  }
  const authTokenPath =
    tokenPathRaw === undefined ? join(dataDir, TOKEN_FILE_NAME) : resolve(tokenPathRaw);
  const webTokenPath = webTokenPathRaw === undefined ? undefined : resolve(webTokenPathRaw);
  if (webTokenPath !== undefined && webTokenPath === authTokenPath) {
    throw new ConfigError("--web-token-path: must differ from the full token's file");
  }

  const maxRaw = raw.maxRequestBytes ?? env.SEED_DAEMON_MAX_REQUEST_BYTES;
  let maxRequestBytes = DEFAULT_MAX_REQUEST_BYTES;
  if (maxRaw !== undefined) {
    if (!/^\d{1,10}$/.test(maxRaw) || Number(maxRaw) < 1024 || Number(maxRaw) > 1 << 30) {
      throw new ConfigError("--max-request-bytes: expected a whole number from 1024 to 1073741824");
    }
    maxRequestBytes = Number(maxRaw);
  }

  const maxConnections = parseCount(
    "--max-connections",
    raw.maxConnections ?? env.SEED_DAEMON_MAX_CONNECTIONS,
    1,
    1_000_000,
    DEFAULT_MAX_CONNECTIONS,
  );
  const h2IdleTimeoutMs = parseCount(
    "--h2-idle-timeout-ms",
    raw.h2IdleTimeoutMs,
    10,
    3_600_000,
    DEFAULT_H2_IDLE_TIMEOUT_MS,
  );

  return Object.freeze({
    dataDir,
    httpAddr: Object.freeze(http),
    grpcAddr: Object.freeze(grpc),
    allowedHosts: Object.freeze(allowedHosts),
    corsOrigins: Object.freeze(corsOrigins),
    publicOnly,
    logLevel: logLevelRaw as LogLevel,
    auditLogPath: auditRaw === undefined ? undefined : resolve(auditRaw),
    authTokenPath,
    webTokenPath,
    maxRequestBytes,
    maxConnections,
    h2IdleTimeoutMs,
    warnings: Object.freeze(warnings),
  });
}

function resolveAddr(
  flag: string,
  fromFlag: string | undefined,
  fromEnv: string | undefined,
  fallback: string,
): ListenAddress {
  if (fromFlag !== undefined) return parseAddrFlag(flag, fromFlag);
  if (fromEnv !== undefined && fromEnv !== "") return parseAddrFlag(flag, fromEnv);
  return parseAddrFlag(flag, fallback);
}
