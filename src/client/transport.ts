/**
 * Transports and typed clients for talking to a daemon whose address and token the caller
 * already has (from {@link readLocalDaemon}, {@link spawnDaemon} or its own configuration).
 *
 * Part of `seed-daemon/client`: imports only `src/wire.ts`, `src/gen/` and npm packages.
 *
 * @module
 */
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { Daemon } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl } from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
import { Documents } from "../gen/com/seed/documents/v3alpha/documents_pb.js";
import { bearerInterceptor, checkToken } from "./auth.js";

/** Wire protocol of a {@link createDaemonTransport} transport. */
export type DaemonProtocol = "connect" | "grpc-web" | "grpc";

/** Options of {@link createDaemonTransport}. */
export interface DaemonTransportOptions {
  /**
   * The listener to call, e.g. `http://127.0.0.1:55001`. The HTTP listener (`baseUrl` of
   * {@link readLocalDaemon}) speaks HTTP/1.1 only; the gRPC listener (`grpcUrl`) speaks HTTP/2
   * (h2c) only, and serves Connect and gRPC-web there too.
   */
  readonly baseUrl: string;
  /**
   * The bearer token, sent as `Authorization: Bearer <token>` on every call; never shown. A
   * function is asked on every call: {@link localTokenSource} gives one that follows a token
   * rotation.
   */
  readonly token: string | (() => string);
  /** Default `"2"` for `grpc` (which needs HTTP/2), else `"1.1"`. */
  readonly httpVersion?: "1.1" | "2";
  /** Default `"connect"`. */
  readonly protocol?: DaemonProtocol;
  /** Further interceptors, run after the one that adds the token. */
  readonly interceptors?: readonly Interceptor[];
}

/** Typed clients of the daemon's three services over one transport. */
export interface DaemonServiceClients {
  readonly daemon: Client<typeof Daemon>;
  readonly documents: Client<typeof Documents>;
  readonly accessControl: Client<typeof AccessControl>;
}

function checkBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError("baseUrl is not a URL; expected e.g. http://127.0.0.1:55001");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError("baseUrl must be http:// or https://, e.g. http://127.0.0.1:55001");
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError("baseUrl must not contain user info; pass the token as `token`");
  }
  return baseUrl.replace(/\/+$/, "");
}

/**
 * A connect-node transport to the daemon whose interceptor adds `Authorization: Bearer <token>`
 * to every call, unary and streaming.
 *
 * @throws {TypeError} for a base URL that is not http(s) or carries user info, an empty token or
 *   one that is not printable ASCII (a token function's answer: from the call), and `grpc` over
 *   HTTP/1.1.
 */
export function createDaemonTransport(opts: DaemonTransportOptions): Transport {
  const baseUrl = checkBaseUrl(opts.baseUrl);
  const token = typeof opts.token === "function" ? opts.token : checkToken(opts.token);
  const protocol = opts.protocol ?? "connect";
  const interceptors = [bearerInterceptor(token), ...(opts.interceptors ?? [])];
  if (protocol === "grpc") {
    if (opts.httpVersion === "1.1") throw new TypeError("gRPC needs HTTP/2 (httpVersion: '2')");
    return createGrpcTransport({ baseUrl, interceptors });
  }
  const create = protocol === "grpc-web" ? createGrpcWebTransport : createConnectTransport;
  return opts.httpVersion === "2"
    ? create({ baseUrl, httpVersion: "2", interceptors })
    : create({ baseUrl, httpVersion: "1.1", interceptors });
}

/** Typed clients for `Daemon`, `Documents` and `AccessControl` over one transport. */
export function createDaemonClients(transport: Transport): DaemonServiceClients {
  return {
    daemon: createClient(Daemon, transport),
    documents: createClient(Documents, transport),
    accessControl: createClient(AccessControl, transport),
  };
}

/**
 * `http://host:port` for a bound address as the daemon reports it (`127.0.0.1:55001`,
 * `[::1]:55001`); a wildcard bind is dialled on loopback, which the Host gate accepts.
 * Undefined when the text is not such an address.
 */
export function dialUrl(addr: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(addr);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) {
    const host = /^[0:]+$/.test(m[1]) ? "::1" : m[1];
    return `http://[${host}]:${port}`;
  }
  const host = m[2] === "0.0.0.0" ? "127.0.0.1" : m[2];
  return `http://${host}:${port}`;
}
