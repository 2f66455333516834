/**
 * Typed clients a web server uses to read from the daemon with its web token, anonymously or for
 * a logged-in browser user (the user's principal, login proof and capabilities forwarded as
 * headers, all checked again by the daemon).
 *
 * @module
 */
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Daemon } from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl } from "../gen/com/seed/documents/v3alpha/access_control_pb.js";
import { Documents } from "../gen/com/seed/documents/v3alpha/documents_pb.js";
import {
  CAPABILITIES_HEADER,
  encodeCapabilitiesHeader,
  PRINCIPAL_HEADER,
  PRINCIPAL_PROOF_HEADER,
} from "../wire.js";
import type { WebSession } from "./auth.js";

/** Options of {@link createDaemonClient}. */
export interface DaemonClientOptions {
  /**
   * The daemon's HTTP listener: `http://127.0.0.1:55001` (a bare `host:port` is taken as http).
   * It appears in error messages, so it must not carry user info.
   */
  readonly baseUrl: string;
  /** The web token (`SEED_DAEMON_WEB_TOKEN`), sent as `Authorization: Bearer`; never shown. */
  readonly token: string;
  /** Deadline of {@link DaemonClient.ready}'s probe, in milliseconds; default 10 000. */
  readonly readyTimeoutMs?: number;
}

/** Typed clients of the daemon's three services over one transport. */
export interface DaemonServices {
  readonly daemon: Client<typeof Daemon>;
  readonly documents: Client<typeof Documents>;
  readonly accessControl: Client<typeof AccessControl>;
}

/** What {@link createDaemonClient} returns: anonymous clients plus per-session ones. */
export interface DaemonClient extends DaemonServices {
  /** The normalised base URL, as error messages show it. */
  readonly baseUrl: string;
  /** Connect transport that adds the bearer token to every call. */
  readonly transport: Transport;
  /**
   * Calls `Daemon.GetInfo` once.
   *
   * @throws {Error} with a one-line message naming the address (never the token) when the daemon
   *   cannot be reached, refuses the token or answers with another error.
   */
  ready(): Promise<void>;
  /**
   * Clients whose calls also carry the session's principal, login proof and (when it holds any)
   * capabilities; without a session, the anonymous clients.
   */
  forSession(session?: WebSession): DaemonServices;
}

function normaliseBaseUrl(input: string): string {
  if (typeof input !== "string" || input === "") {
    throw new TypeError("baseUrl must be the daemon's address, e.g. http://127.0.0.1:55001");
  }
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(input) ? input : `http://${input}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError("baseUrl is not a URL, expected e.g. http://127.0.0.1:55001");
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError("baseUrl must not contain user info; pass the token as `token`");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`baseUrl must be http(s), e.g. http://127.0.0.1:55001`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw new TypeError("baseUrl must not have a query or fragment");
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** A bearer token is visible ASCII without spaces: anything else could split a header. */
const TOKEN_RE = /^[\x21-\x7e]+$/;

/** A transport whose every call carries `extra` headers (set last, so they win). */
function withHeaders(base: Transport, extra: ReadonlyArray<readonly [string, string]>): Transport {
  const merge = (header: Parameters<Transport["unary"]>[3]): Headers => {
    const h = new Headers(header);
    for (const [k, v] of extra) h.set(k, v);
    return h;
  };
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      return base.unary(method, signal, timeoutMs, merge(header), input, contextValues);
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return base.stream(method, signal, timeoutMs, merge(header), input, contextValues);
    },
  };
}

function services(transport: Transport): DaemonServices {
  return {
    daemon: createClient(Daemon, transport),
    documents: createClient(Documents, transport),
    accessControl: createClient(AccessControl, transport),
  };
}

/** Connect's wire name of a code (`permission_denied`). */
function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/[A-Z]/g, (c, i: number) =>
    i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`,
  );
}

/** A system error code (`ECONNREFUSED`) somewhere in the cause chain, if any. */
function systemCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && typeof e === "object" && e !== null; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z0-9_]{2,30}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Creates clients for the daemon at `baseUrl` (Connect protocol over HTTP/1.1, Node only) that
 * send `Authorization: Bearer <token>` on every call.
 *
 * @throws {TypeError} for a malformed `baseUrl` or token (the token is never quoted).
 */
export function createDaemonClient(options: DaemonClientOptions): DaemonClient {
  const baseUrl = normaliseBaseUrl(options.baseUrl);
  const token = options.token;
  if (typeof token !== "string" || !TOKEN_RE.test(token)) {
    throw new TypeError("token must be a non-empty string of visible ASCII characters");
  }
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const bearer = `Bearer ${token}`;
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", bearer);
        return next(req);
      },
    ],
  });
  const anonymous = services(transport);

  async function ready(): Promise<void> {
    try {
      await anonymous.daemon.getInfo({}, { timeoutMs: readyTimeoutMs });
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code === Code.Unauthenticated) {
        throw new Error(
          `the daemon at ${baseUrl} refused the token (unauthenticated): check the web token (SEED_DAEMON_WEB_TOKEN) the site was given`,
        );
      }
      if (e.code === Code.Unavailable || e.code === Code.DeadlineExceeded) {
        const why =
          e.code === Code.DeadlineExceeded
            ? `no answer within ${readyTimeoutMs} ms`
            : (systemCode(err) ?? "unavailable");
        throw new Error(
          `cannot reach the daemon at ${baseUrl} (${why}): is it running, and is this its --http-addr?`,
        );
      }
      throw new Error(
        `the daemon at ${baseUrl} answered GetInfo with ${codeName(e.code)}: is this its --http-addr?`,
      );
    }
  }

  function forSession(session?: WebSession): DaemonServices {
    if (session === undefined) return anonymous;
    const extra: [string, string][] = [
      [PRINCIPAL_HEADER, session.principal],
      [PRINCIPAL_PROOF_HEADER, session.proof],
    ];
    if (session.capabilities.length > 0) {
      extra.push([CAPABILITIES_HEADER, encodeCapabilitiesHeader(session.capabilities)]);
    }
    return services(withHeaders(transport, extra));
  }

  return { baseUrl, transport, ...anonymous, ready, forSession };
}
