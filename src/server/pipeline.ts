import { type IncomingMessage, maxHeaderSize, type ServerResponse } from "node:http";
import {
  type Http2ServerRequest,
  type Http2ServerResponse,
  constants as http2constants,
} from "node:http2";
import { cors } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Authenticator } from "../security/authenticator.js";
import { parseBearer } from "../security/bearer.js";
import type { Credential, PipelineVerdict } from "../security/caller.js";
import { checkHost } from "../security/host-gate.js";
import type { OriginPolicy } from "../security/origin.js";
import {
  CAPABILITIES_HEADER,
  PRINCIPAL_HEADER,
  PRINCIPAL_PROOF_HEADER,
} from "../security/scopes.js";
import { IPFS_ALLOWED_METHODS, type IpfsHandler, ipfsSegmentOf, isIpfsReadMethod } from "./ipfs.js";
import type { Metrics, RejectReason } from "./metrics.js";

/** A request on either listener (HTTP/1.1 or the HTTP/2 compatibility API). */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** A response on either listener. */
export type NodeResponse = ServerResponse | Http2ServerResponse;
/** A handler on either listener. */
export type NodeHandler = (req: NodeRequest, res: NodeResponse) => void;

const ALLOW_METHODS = [...cors.allowedMethods].join(", ");
const ALLOW_HEADERS = [
  ...cors.allowedHeaders,
  "Authorization",
  PRINCIPAL_HEADER,
  PRINCIPAL_PROOF_HEADER,
  CAPABILITIES_HEADER,
].join(", ");
const EXPOSE_HEADERS = [...cors.exposedHeaders].join(", ");
/** Largest unread body of a refused HTTP/1.1 request that Node may discard to keep the connection. */
const MAX_DISCARDED_BODY_BYTES = 64 * 1024;
/** Short, so a revoked origin's cached preflight does not outlive the revocation by much. */
const PREFLIGHT_MAX_AGE_SECONDS = "60";

/** The verdict on each request handed to the RPC adapter, until the request is collected. */
const verdicts = new WeakMap<NodeRequest, PipelineVerdict>();

/**
 * What the pipeline decided about `req`, for the RPC adapter's context values; undefined for a
 * request the pipeline did not pass on.
 */
export function pipelineVerdictOf(req: NodeRequest): PipelineVerdict | undefined {
  return verdicts.get(req);
}

/** What the pipeline needs; each policy is a pure function or object tested on its own. */
export interface PipelineOptions {
  /** Host values accepted on this listener (known once it is bound). */
  readonly allowedHosts: () => ReadonlySet<string>;
  readonly originPolicy: OriginPolicy;
  readonly auth: Authenticator;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The Connect/gRPC/gRPC-web handler that serves authenticated RPCs. */
  readonly rpc: NodeHandler;
  /**
   * `GET`/`HEAD /ipfs/{cid}`; without it those paths reach {@link rpc} like any other. Other
   * methods on such a path get `405`, after the token check.
   */
  readonly ipfs?: IpfsHandler;
  /**
   * Largest request body (`--max-request-bytes`). A request the pipeline answers itself
   * (`/health`, `/metrics`, `/ipfs`) that declares a larger body gets `413`; RPCs keep the
   * Connect library's own answer. Without it, no such check.
   */
  readonly maxRequestBytes?: number;
}

/**
 * The pipeline of {@link createPipeline}: the `request` listener, and the same pipeline for
 * Node's `checkContinue` event, which sends `100 Continue` only once the request got through
 * the Host, Origin and token checks and is about to reach a handler that reads its body.
 */
export type Pipeline = NodeHandler & { readonly checkContinue: NodeHandler };

/** Requests whose client waits for `100 Continue` before sending the body, not sent yet. */
const awaitingContinue = new WeakSet<NodeRequest>();

/**
 * How often a header occurs in the request as it was sent. Node keeps only the first of some
 * repeated headers (`Host`, `Authorization`) and joins others with `, `, on HTTP/1.1 and
 * HTTP/2 alike, so only the raw list tells that a request carried two.
 */
function headerCount(req: NodeRequest, name: string): number {
  let count = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.toLowerCase() === name) count++;
  }
  return count;
}

/**
 * The Host the gate checks. A request with two `Host` headers is ambiguous, and so is an HTTP/2
 * request whose `:authority` and `host` disagree (proxies and the daemon could each pick a
 * different one): both have no Host here, so the gate refuses them.
 */
function hostOf(req: NodeRequest): string | undefined {
  const hosts = headerCount(req, "host");
  if (hosts > 1) return undefined;
  if (req.httpVersionMajor >= 2) {
    const authority = req.headers[":authority"];
    const host = req.headers.host;
    if (typeof authority !== "string") return host;
    if (host !== undefined && host.toLowerCase() !== authority.toLowerCase()) return undefined;
    return authority;
  }
  return hosts === 1 ? req.headers.host : undefined;
}

/** The `Authorization` header, or undefined when there is none or more than one. */
function authorizationOf(req: NodeRequest): string | undefined {
  return headerCount(req, "authorization") === 1 ? req.headers.authorization : undefined;
}

/**
 * True when an HTTP/2 request's header fields add up to more than Node's HTTP/1.1 limit
 * (`maxHeaderSize`, 16 KiB unless `--max-http-header-size` says otherwise). Node's parser answers
 * such an HTTP/1.1 request `431` itself; HTTP/2 has no such limit of its own below the
 * listener's hard one, so the pipeline applies the same bound.
 */
function headersTooLarge(req: NodeRequest): boolean {
  if (req.httpVersionMajor < 2) return false;
  let bytes = 0;
  for (const part of req.rawHeaders) bytes += part.length;
  return bytes > maxHeaderSize;
}

/** True when the request declares a body larger than `max` bytes. */
function declaresMoreThan(req: NodeRequest, max: number | undefined): boolean {
  const length = req.headers["content-length"];
  return max !== undefined && length !== undefined && Number(length) > max;
}

function pathOf(req: NodeRequest): string {
  const url = req.url ?? "";
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

function isGrpc(req: NodeRequest): boolean {
  const ct = req.headers["content-type"];
  return typeof ct === "string" && /^application\/grpc(?!-web)/i.test(ct);
}

/** The Connect code name and gRPC status of each status a refusal may have. */
const REFUSALS = {
  401: { code: "unauthenticated", grpc: "16" },
  403: { code: "permission_denied", grpc: "7" },
  405: { code: "unimplemented", grpc: "12" },
  413: { code: "resource_exhausted", grpc: "8" },
  431: { code: "resource_exhausted", grpc: "8" },
} as const;

/** Message of the `413` for a declared body over `--max-request-bytes`. */
const TOO_LARGE_MESSAGE = "request body too large";

/**
 * Before an answer the pipeline gives itself: a client still waiting for `100 Continue` may or
 * may not send its body now, so an HTTP/1.1 connection cannot safely carry another request.
 */
function answeringWithoutContinue(req: NodeRequest, res: NodeResponse): void {
  if (awaitingContinue.delete(req) && req.httpVersionMajor === 1) {
    res.setHeader("connection", "close");
  }
}

/** A refusal's fixed parts, built once per status and message (see {@link refusalOf}). */
interface Refusal {
  readonly body: Buffer;
  readonly headers: readonly [string, string][];
  readonly grpcHeaders: readonly [string, string][];
}
const refusals = new Map<string, Refusal>();

/**
 * The body and headers of a refusal. Messages are the pipeline's fixed strings, so the cache is
 * bounded; a flood of refused requests then costs no JSON or header building per request.
 */
function refusalOf(status: keyof typeof REFUSALS, message: string): Refusal {
  const key = `${status} ${message}`;
  let r = refusals.get(key);
  if (r === undefined) {
    const { code, grpc } = REFUSALS[status];
    const body = Buffer.from(JSON.stringify({ code, message }));
    const headers: [string, string][] = [
      ["content-type", "application/json"],
      ["content-length", String(body.length)],
      ["cache-control", "no-store"],
    ];
    if (status === 401) headers.push(["www-authenticate", 'Bearer realm="seed-daemon"']);
    const grpcHeaders: [string, string][] = [
      ...headers,
      ["grpc-status", grpc],
      ["grpc-message", encodeURIComponent(message)],
    ];
    r = { body, headers, grpcHeaders };
    refusals.set(key, r);
  }
  return r;
}

/** Ends a refused request without reading its body. */
function refuse(
  req: NodeRequest,
  res: NodeResponse,
  status: keyof typeof REFUSALS,
  message: string,
  extraHeaders: Readonly<Record<string, string>> = {},
): void {
  const refusal = refusalOf(status, message);
  answeringWithoutContinue(req, res);
  for (const k in extraHeaders) res.setHeader(k, extraHeaders[k] as string);
  for (const [k, v] of isGrpc(req) ? refusal.grpcHeaders : refusal.headers) res.setHeader(k, v);
  // The answer goes out before the body is read. Node then discards a small body so the
  // connection stays usable (closing it under a client still writing would turn the answer into
  // a broken pipe); a body declared or growing past the limit cuts the connection instead.
  const length = req.headers["content-length"];
  const declaredTooLarge = length !== undefined && !(Number(length) <= MAX_DISCARDED_BODY_BYTES);
  if (declaredTooLarge && req.httpVersionMajor === 1) res.setHeader("connection", "close");
  res.statusCode = status;
  res.end(refusal.body);
  if (declaredTooLarge || req.readableEnded) return;
  // A declared HTTP/1.1 body within the limit is read and dropped by Node itself once the answer
  // is sent (its parser stops at the declared length), with no listener of ours per request.
  if (length !== undefined && req.httpVersionMajor === 1) return;
  let seen = 0;
  req.on("data", (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > MAX_DISCARDED_BODY_BYTES) {
      if ("stream" in req) req.stream.close(http2constants.NGHTTP2_CANCEL);
      else req.socket.destroy();
    }
  });
}

/**
 * The security pipeline of docs/architecture.md ("A request, step by step"), in order: Host gate, Origin policy, preflight, bearer,
 * then the RPC handler (whose interceptors check the token again). `GET`/`HEAD /ipfs/{cid}`
 * goes to the blob handler instead, after the bearer check, or right after the Origin policy
 * when that handler needs no token (`--public-only`).
 *
 * Before the Host gate, an HTTP/2 header list over Node's `maxHeaderSize` gets `431` (HTTP/1.1
 * has Node's parser for that). A request the pipeline answers itself gets `413` when it declares
 * a body over {@link PipelineOptions.maxRequestBytes}. Through {@link Pipeline.checkContinue},
 * `100 Continue` is sent only to a request about to reach the RPC handler.
 */
export function createPipeline(opts: PipelineOptions): Pipeline {
  const { metrics, logger, maxRequestBytes } = opts;
  const reject = (reason: RejectReason, req: NodeRequest) => {
    metrics.reject(reason);
    // Floods of refused requests are counted, not logged line by line at info level.
    if (logger.isLevelEnabled("debug")) {
      logger.debug(
        { reason, method: req.method, path: pathOf(req), remote_addr: req.socket?.remoteAddress },
        "request refused",
      );
    }
  };

  /**
   * Hands an accepted request to the RPC handler, which reads its body: the moment for `100
   * Continue`. A declared body over the limit gets none, since the RPC handler refuses it from
   * its length alone, so the client need not send it.
   */
  const proceed = (req: NodeRequest, res: NodeResponse) => {
    if (!awaitingContinue.has(req)) return;
    if (declaresMoreThan(req, maxRequestBytes)) answeringWithoutContinue(req, res);
    else {
      awaitingContinue.delete(req);
      res.writeContinue();
    }
  };
  /** `413` for a declared body over the limit, on a request no RPC handler answers. */
  const refusedTooLarge = (req: NodeRequest, res: NodeResponse) => {
    if (!declaresMoreThan(req, maxRequestBytes)) return false;
    refuse(req, res, 413, TOO_LARGE_MESSAGE);
    return true;
  };

  const pipeline = (req: NodeRequest, res: NodeResponse) => {
    if (headersTooLarge(req)) {
      refuse(req, res, 431, "request headers too large");
      return;
    }
    const host = checkHost(hostOf(req), opts.allowedHosts());
    if (!host.ok) {
      reject("host", req);
      refuse(req, res, 403, "host not allowed");
      return;
    }

    res.setHeader("vary", "Origin");
    const originHeader = req.headers.origin;
    const origin = opts.originPolicy.check(
      Array.isArray(originHeader) ? originHeader.join(",") : originHeader,
    );
    if (origin.kind === "denied") {
      reject("origin", req);
      refuse(req, res, 403, "origin not allowed");
      return;
    }
    if (origin.kind === "allowed") {
      res.setHeader("access-control-allow-origin", String(originHeader));
      res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
      if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
        res.setHeader("access-control-allow-methods", ALLOW_METHODS);
        res.setHeader("access-control-allow-headers", ALLOW_HEADERS);
        res.setHeader("access-control-max-age", PREFLIGHT_MAX_AGE_SECONDS);
        if (req.headers["access-control-request-private-network"] === "true") {
          res.setHeader("access-control-allow-private-network", "true");
        }
        answeringWithoutContinue(req, res);
        res.statusCode = 204;
        res.end();
        return;
      }
    }

    const path = pathOf(req);
    const allowedOrigin = origin.kind === "allowed" ? origin.origin : undefined;
    // `/ipfs/{cid}`: GET and HEAD go to the blob handler, tokenless ones right here, the others
    // after the bearer check; any other method on such a path is 405 after the bearer check.
    const ipfs = opts.ipfs;
    const segment = ipfs === undefined ? undefined : ipfsSegmentOf(path);
    const readsBlob = segment !== undefined && isIpfsReadMethod(req.method);
    const serveBlob = (credential: Credential | undefined) => {
      if (ipfs === undefined || segment === undefined || refusedTooLarge(req, res)) return;
      // GET and HEAD bodies are never read.
      answeringWithoutContinue(req, res);
      const outcome = ipfs.serve(req, res, { segment, credential, origin: allowedOrigin });
      // A paired origin forwarding identity is the one refusal of a token's scope there.
      if (outcome === "permission_denied") reject("scope", req);
    };
    if (readsBlob && ipfs?.tokenless === true) {
      serveBlob(undefined);
      return;
    }

    if (path === "/health" && req.method === "GET") {
      if (refusedTooLarge(req, res)) return;
      answeringWithoutContinue(req, res);
      const body = '{"status":"ok"}';
      res.setHeader("content-type", "application/json");
      res.setHeader("cache-control", "no-store");
      res.statusCode = 200;
      res.end(body);
      return;
    }

    const credential = opts.auth.authenticate(parseBearer(authorizationOf(req)), allowedOrigin);
    if (credential === undefined) {
      reject("token", req);
      refuse(req, res, 401, "missing or invalid bearer token");
      return;
    }

    if (segment !== undefined) {
      if (readsBlob) serveBlob(credential);
      else refuse(req, res, 405, "method not allowed", { allow: IPFS_ALLOWED_METHODS });
      return;
    }

    if (path === "/metrics" && req.method === "GET") {
      if (credential.kind !== "master") {
        reject("scope", req);
        refuse(req, res, 403, "metrics need the master token");
        return;
      }
      if (refusedTooLarge(req, res)) return;
      answeringWithoutContinue(req, res);
      metrics.registry.metrics().then(
        (text) => {
          res.setHeader("content-type", metrics.registry.contentType);
          res.statusCode = 200;
          res.end(text);
        },
        () => {
          res.statusCode = 500;
          res.end();
        },
      );
      return;
    }

    proceed(req, res);
    verdicts.set(req, { credential, origin: allowedOrigin });
    opts.rpc(req, res);
  };
  return Object.assign(pipeline, {
    checkContinue: (req: NodeRequest, res: NodeResponse) => {
      awaitingContinue.add(req);
      pipeline(req, res);
    },
  });
}

/**
 * The RPC adapter's answer for a path no RPC has: `404` with no body, or `413` when the request
 * declares a body over `maxRequestBytes` (it is a plain HTTP request, not an RPC).
 */
export function createRpcFallback(maxRequestBytes: number): NodeHandler {
  return (req, res) => {
    if (declaresMoreThan(req, maxRequestBytes)) {
      refuse(req, res, 413, TOO_LARGE_MESSAGE);
      return;
    }
    res.statusCode = 404;
    res.end();
  };
}
