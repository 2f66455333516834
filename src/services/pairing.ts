/**
 * Origin pairing methods of the Daemon service (issue 4): PairOrigin, ListPairedOrigins,
 * UnpairOrigin.
 *
 * All three need the master token. The auth interceptor already keeps origin-bound tokens out
 * (they are not in `ORIGIN_TOKEN_PROCEDURES`); the handlers check again, because a paired page
 * that could pair more origins, or list or revoke them, would escalate its own grant.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { EmptySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { codeName, toConnectError } from "../errors.js";
import {
  type Daemon,
  ListPairedOriginsResponseSchema,
  PairedOriginSchema,
} from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import type { Caller } from "../security/caller.js";
import { parsePairableOrigin } from "../security/origin.js";
import { callerOf, type ServiceDeps } from "./context.js";

/**
 * Refuses any credential but the master token.
 *
 * @throws ConnectError `permission_denied`.
 */
function requireMaster(caller: Caller, method: string): void {
  if (caller.credential.kind !== "master") {
    throw new ConnectError(
      `${method} needs the master token; a paired origin's token may not manage pairings`,
      Code.PermissionDenied,
    );
  }
}

/**
 * Names the origin an audit record is about (its `origin` field). Canonical when the input
 * parses, so one origin always reads the same in the log; otherwise quoted (AuditLog escapes
 * and caps it).
 */
function auditedOrigin(raw: string): string {
  const parsed = parsePairableOrigin(raw);
  if (parsed.ok) return parsed.origin;
  return JSON.stringify(raw);
}

/**
 * Runs a pairing mutation and leaves one audit record for it, whatever the outcome. The reason
 * of a failure is the Connect code and the secret-free message `toConnectError` would send (just
 * `internal` for an unexpected error). The token is never part of a record.
 */
function audited<T>(
  deps: ServiceDeps,
  ctx: HandlerContext,
  event: "origin.pair" | "origin.unpair",
  method: "PairOrigin" | "UnpairOrigin",
  origin: string,
  run: () => T,
): T {
  const caller = callerOf(ctx);
  const base = {
    event,
    method,
    remote_addr: caller.remoteAddr,
    principal: caller.principal,
    origin: auditedOrigin(origin),
  };
  try {
    requireMaster(caller, method);
  } catch (err) {
    deps.audit.record({ ...base, outcome: "denied", reason: "permission_denied" });
    throw err;
  }
  let result: T;
  try {
    result = run();
  } catch (err) {
    const ce = toConnectError(err);
    const reason =
      ce.code === Code.Internal ? "internal" : `${codeName(ce.code)}: ${ce.rawMessage}`;
    deps.audit.record({ ...base, outcome: "error", reason });
    throw err;
  }
  deps.audit.record({ ...base, outcome: "ok" });
  return result;
}

/** Origin pairing methods of the Daemon service. */
export function pairingService(deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  const store = deps.pairedOrigins;
  return {
    pairOrigin(req, ctx) {
      // The store validates and normalises the origin and label (invalid_argument otherwise)
      // and writes the file before the token is handed out.
      const paired = audited(deps, ctx, "origin.pair", "PairOrigin", req.origin, () =>
        store.pair(req.origin, req.label),
      );
      return create(PairedOriginSchema, {
        origin: paired.origin,
        label: paired.label,
        createTime: timestampFromDate(paired.createTime),
        token: paired.token,
      });
    },

    listPairedOrigins(_req, ctx) {
      requireMaster(callerOf(ctx), "ListPairedOrigins");
      return create(ListPairedOriginsResponseSchema, {
        // `token` stays empty: the store only has hashes, and they are not shown either.
        origins: store.list().map((p) =>
          create(PairedOriginSchema, {
            origin: p.origin,
            label: p.label,
            createTime: timestampFromDate(p.createTime),
          }),
        ),
      });
    },

    unpairOrigin(req, ctx) {
      audited(deps, ctx, "origin.unpair", "UnpairOrigin", req.origin, () =>
        store.unpair(req.origin),
      );
      return create(EmptySchema);
    },
  };
}
