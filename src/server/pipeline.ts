import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type Http2ServerRequest,
  type Http2ServerResponse,
  constants as http2constants,
} from "node:http2";
import { cors } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Authenticator } from "../security/authenticator.js";
import { parseBearer } from "../security/bearer.js";
import type { Credential } from "../security/caller.js";
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
}

function hostOf(req: NodeRequest): string | undefined {
  if (req.httpVersionMajor >= 2) {
    const authority = req.headers[":authority"];
    return typeof authority === "string" ? authority : req.headers.host;
  }
  // Node keeps only the first of repeated Host headers; a request with two is ambiguous.
  let count = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.toLowerCase() === "host") count++;
  }
  return count === 1 ? req.headers.host : undefined;
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
} as const;

/** Ends a refused request without reading its body. */
function refuse(
  req: NodeRequest,
  res: NodeResponse,
  status: keyof typeof REFUSALS,
  message: string,
  extraHeaders: Readonly<Record<string, string>> = {},
): void {
  const { code, grpc } = REFUSALS[status];
  const body = JSON.stringify({ code, message });
  const headers: Record<string, string> = {
    ...extraHeaders,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
  };
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="seed-daemon"';
  if (isGrpc(req)) {
    headers["grpc-status"] = grpc;
    headers["grpc-message"] = encodeURIComponent(message);
  }
  // The answer goes out before the body is read. Node then discards a small body so the
  // connection stays usable (closing it under a client still writing would turn the answer into
  // a broken pipe); a body declared or growing past the limit cuts the connection instead.
  const length = req.headers["content-length"];
  const declaredTooLarge = length !== undefined && !(Number(length) <= MAX_DISCARDED_BODY_BYTES);
  if (declaredTooLarge && req.httpVersionMajor === 1) headers.connection = "close";
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.statusCode = status;
  res.end(body);
  if (declaredTooLarge || req.readableEnded) return;
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
 */
export function createPipeline(opts: PipelineOptions): NodeHandler {
  const { metrics, logger } = opts;
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

  return (req, res) => {
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
      if (ipfs === undefined || segment === undefined) return;
      const outcome = ipfs.serve(req, res, { segment, credential, origin: allowedOrigin });
      // A paired origin forwarding identity is the one refusal of a token's scope there.
      if (outcome === "permission_denied") reject("scope", req);
    };
    if (readsBlob && ipfs?.tokenless === true) {
      serveBlob(undefined);
      return;
    }

    if (path === "/health" && req.method === "GET") {
      const body = '{"status":"ok"}';
      res.setHeader("content-type", "application/json");
      res.setHeader("cache-control", "no-store");
      res.statusCode = 200;
      res.end(body);
      return;
    }

    const credential = opts.auth.authenticate(
      parseBearer(req.headers.authorization),
      allowedOrigin,
    );
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

    opts.rpc(req, res);
  };
}
