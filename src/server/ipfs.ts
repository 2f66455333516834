/**
 * `GET /ipfs/{cid}` (and `HEAD`): the raw bytes of a stored blob, under any CID it is known by,
 * for callers that could read what the blob belongs to.
 *
 * - A Change or Ref blob is readable when one of the live (not deleted) documents it belongs to
 *   is readable under the Documents read rule ({@link DocumentReader}, which also leaves the
 *   `document.read` audit record of every private decision). A Capability blob is readable when
 *   the caller may see that capability over AccessControl ({@link capabilityVisible}).
 * - A blob the caller may not read answers exactly as a missing one: same status, headers and
 *   body. No error ever echoes the CID or a header.
 * - Outside `--public-only` mode the pipeline has already checked the bearer token, and the
 *   caller is built as the RPC interceptor builds it (forwarded principal and capabilities
 *   through the same {@link ForwardedIdentityResolver}; a paired origin may forward neither).
 * - In `--public-only` mode no token is needed and none is looked at: every caller is anonymous,
 *   so only blobs of public, live documents are served.
 *
 * Routing (which paths and methods reach this handler) is the pipeline's.
 *
 * @module
 */

import { Code } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { AuditLog } from "../audit/audit.js";
import { parseCid } from "../blob/index.js";
import { toConnectError } from "../errors.js";
import type { Caller, Credential } from "../security/caller.js";
import type { ForwardedIdentityResolver } from "../security/forwarded-identity.js";
import {
  CAPABILITIES_HEADER,
  PRINCIPAL_HEADER,
  PRINCIPAL_PROOF_HEADER,
} from "../security/scopes.js";
import { capabilityVisible } from "../services/access-control.js";
import { DocumentReader } from "../services/read-rule.js";
import type { BlobReadTarget, BlobStore } from "../store/blob-store.js";
import type { Keystore } from "../store/keystore.js";
import type { NodeRequest, NodeResponse } from "./pipeline.js";

/** The method name audit records of `/ipfs` reads carry. */
export const IPFS_METHOD = "GET /ipfs";
/** The methods `/ipfs/{cid}` answers, as the `Allow` header of a 405 names them. */
export const IPFS_ALLOWED_METHODS = "GET, HEAD";
/** Media type of every served blob: Seed blobs are DAG-CBOR. */
export const BLOB_CONTENT_TYPE = "application/vnd.ipld.dag-cbor";

const PATH_PREFIX = "/ipfs/";
/** A blob is content-addressed: under one CID its bytes never change. */
const PUBLIC_CACHE = "public, max-age=31536000, immutable";
/** Nothing a caller could read only with its credential may be kept by a shared cache. */
const PRIVATE_CACHE = "private, no-store";

/**
 * The CID segment of an `/ipfs/{cid}` path (query already stripped): exactly one non-empty
 * segment after `/ipfs/`.
 *
 * @returns the segment as sent, or undefined when `path` is not such a path.
 */
export function ipfsSegmentOf(path: string): string | undefined {
  if (!path.startsWith(PATH_PREFIX)) return undefined;
  const segment = path.slice(PATH_PREFIX.length);
  return segment === "" || segment.includes("/") ? undefined : segment;
}

/** Whether `method` is one `/ipfs/{cid}` serves. */
export function isIpfsReadMethod(method: string | undefined): boolean {
  return method === "GET" || method === "HEAD";
}

/** What {@link createIpfsHandler} needs. */
export interface IpfsHandlerDeps {
  readonly store: Pick<
    BlobStore,
    | "blobReadTarget"
    | "getBlob"
    | "getCapability"
    | "listCapabilities"
    | "listCapabilitiesForDelegate"
  >;
  readonly keystore: Pick<Keystore, "list">;
  readonly audit: Pick<AuditLog, "record">;
  /** The resolver the RPC interceptor uses, so both paths verify forwarded identity alike. */
  readonly identity: Pick<ForwardedIdentityResolver, "resolve">;
  /** `--public-only`: no token, anonymous callers, public documents only. */
  readonly publicOnly: boolean;
  readonly logger: Pick<Logger, "error">;
  /** Clock, Unix milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
}

/** What the pipeline learnt about a `/ipfs/{cid}` request before handing it over. */
export interface IpfsRequest {
  /** The path segment after `/ipfs/`, as sent ({@link ipfsSegmentOf}). */
  readonly segment: string;
  /** The bearer token's credential; undefined in `--public-only` mode, where none is checked. */
  readonly credential: Credential | undefined;
  /** The request's Origin, normalised, when the origin policy allowed one. */
  readonly origin: string | undefined;
}

/** How a `/ipfs` request was answered: the Connect code name of the answer, or `ok`. */
export type IpfsOutcome =
  | "ok"
  | "not_found"
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "internal";

/** The `/ipfs/{cid}` handler the pipeline routes to. */
export interface IpfsHandler {
  /** Whether `GET`/`HEAD` are served without a bearer token (`--public-only` mode). */
  readonly tokenless: boolean;
  /**
   * Answers one `GET` or `HEAD` request, synchronously (`HEAD`: the same headers, no body).
   * Never throws: an unexpected failure is a bare `500`, logged without detail.
   */
  serve(req: NodeRequest, res: NodeResponse, request: IpfsRequest): IpfsOutcome;
}

/** Why a blob is served: the cache policy follows from it. */
type Grant = "public" | "private";

type ErrorOutcome = Exclude<IpfsOutcome, "ok">;

const STATUS: Readonly<Record<ErrorOutcome, number>> = {
  not_found: 404,
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  internal: 500,
};

const NOT_FOUND_MESSAGE = "blob not found";
const INVALID_CID_MESSAGE = "invalid CID";
const ORIGIN_FORWARDING_MESSAGE =
  "a paired origin's token may not assert a principal or capabilities";
const INTERNAL_MESSAGE = "internal error";

/** A forwarded header as the interceptor reads it: repeated values joined, absent undefined. */
function headerOf(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(", ") : v;
}

function write(
  req: NodeRequest,
  res: NodeResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: Uint8Array,
): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader("content-length", String(body.byteLength));
  res.setHeader("x-content-type-options", "nosniff");
  res.statusCode = status;
  if (req.method === "HEAD") res.end();
  else res.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** A Connect-style JSON error; its message is always one of the fixed ones above. */
function fail(
  req: NodeRequest,
  res: NodeResponse,
  outcome: ErrorOutcome,
  message: string,
): ErrorOutcome {
  const body = Buffer.from(JSON.stringify({ code: outcome, message }));
  write(
    req,
    res,
    STATUS[outcome],
    { "content-type": "application/json", "cache-control": "no-store" },
    body,
  );
  return outcome;
}

/**
 * Builds the `/ipfs/{cid}` handler. One per daemon; it keeps no per-request state (a
 * {@link DocumentReader} is made for each request).
 */
export function createIpfsHandler(deps: IpfsHandlerDeps): IpfsHandler {
  const now = deps.now ?? Date.now;
  const readerDeps = {
    store: deps.store,
    keystore: deps.keystore,
    audit: deps.audit,
    publicOnly: deps.publicOnly,
    now,
  };

  /** The caller as the interceptor would build it, or the error outcome already answered. */
  const callerOf = (
    req: NodeRequest,
    res: NodeResponse,
    request: IpfsRequest,
  ): Caller | ErrorOutcome => {
    const remoteAddr = req.socket?.remoteAddress ?? "";
    if (deps.publicOnly) {
      // Authorization and the forwarding headers are not even looked at.
      return {
        remoteAddr,
        credential: { kind: "web" },
        origin: request.origin,
        principal: undefined,
        capabilities: [],
      };
    }
    const { credential } = request;
    // The pipeline checked the token; this only keeps the handler safe if it ever did not.
    if (credential === undefined) {
      return fail(req, res, "unauthenticated", "missing or invalid bearer token");
    }
    const headers = {
      principal: headerOf(req, PRINCIPAL_HEADER),
      proof: headerOf(req, PRINCIPAL_PROOF_HEADER),
      capabilities: headerOf(req, CAPABILITIES_HEADER),
    };
    if (
      credential.kind === "origin" &&
      (headers.principal !== undefined ||
        headers.proof !== undefined ||
        headers.capabilities !== undefined)
    ) {
      deps.audit.record({
        event: "scope.denied",
        method: IPFS_METHOD,
        remote_addr: remoteAddr,
        origin: credential.origin,
        outcome: "denied",
        reason: "permission_denied",
      });
      return fail(req, res, "permission_denied", ORIGIN_FORWARDING_MESSAGE);
    }
    let forwarded: ReturnType<IpfsHandlerDeps["identity"]["resolve"]>;
    try {
      forwarded = deps.identity.resolve(credential, headers, now());
    } catch (err) {
      // The resolver's messages are fixed and never quote a header.
      const ce = toConnectError(err);
      if (ce.code === Code.Unauthenticated) return fail(req, res, "unauthenticated", ce.rawMessage);
      if (ce.code === Code.InvalidArgument)
        return fail(req, res, "invalid_argument", ce.rawMessage);
      throw err;
    }
    return {
      remoteAddr,
      credential,
      origin: request.origin,
      principal: forwarded.principal,
      capabilities: forwarded.capabilities,
    };
  };

  /** Why `caller` may read the blob `cid` (canonical string form), or undefined if it may not. */
  const grantOf = (caller: Caller, cid: string, target: BlobReadTarget): Grant | undefined => {
    if (target.kind === "capability") {
      if (deps.publicOnly) return undefined;
      const cap = deps.store.getCapability(cid);
      return cap !== undefined && capabilityVisible(caller, cap) ? "private" : undefined;
    }
    // Public documents first: they need no lookup and no audit record, and a blob a public
    // document covers may be cached as public even when a private one covers it too.
    const live = target.documents
      .filter((d) => !d.deleted)
      .sort((a, b) => Number(a.visibility !== "public") - Number(b.visibility !== "public"));
    if (live.length === 0) return undefined;
    const reader = new DocumentReader(readerDeps, caller, IPFS_METHOD);
    for (const doc of live) {
      const decision = reader.decide({
        account: doc.account,
        path: doc.path,
        visibility: doc.visibility,
      });
      if (decision.granted) return doc.visibility === "public" ? "public" : "private";
    }
    return undefined;
  };

  const serve = (req: NodeRequest, res: NodeResponse, request: IpfsRequest): IpfsOutcome => {
    const caller = callerOf(req, res, request);
    if (typeof caller === "string") return caller;
    let cid: string;
    try {
      cid = parseCid(request.segment).string;
    } catch {
      return fail(req, res, "invalid_argument", INVALID_CID_MESSAGE);
    }
    const target = deps.store.blobReadTarget(cid);
    const grant = target === undefined ? undefined : grantOf(caller, cid, target);
    const bytes = grant === undefined ? undefined : deps.store.getBlob(cid);
    if (grant === undefined || bytes === undefined) {
      return fail(req, res, "not_found", NOT_FOUND_MESSAGE);
    }
    write(
      req,
      res,
      200,
      {
        "content-type": BLOB_CONTENT_TYPE,
        // The CID as requested (normalised): an alias CID names the same bytes.
        etag: `"${cid}"`,
        "cache-control": grant === "public" ? PUBLIC_CACHE : PRIVATE_CACHE,
      },
      bytes,
    );
    return "ok";
  };

  return {
    tokenless: deps.publicOnly,
    serve(req, res, request) {
      try {
        return serve(req, res, request);
      } catch (err) {
        // Only the error's name: a message may quote anything.
        deps.logger.error(
          { method: IPFS_METHOD, err: { name: err instanceof Error ? err.name : typeof err } },
          "unexpected error in handler",
        );
        if (res.headersSent) return "internal";
        return fail(req, res, "internal", INTERNAL_MESSAGE);
      }
    },
  };
}
