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
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Daemon,
  ListPairedOriginsResponseSchema,
  PairedOriginSchema,
} from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import type { Caller } from "../security/caller.js";
import { parsePairableOrigin } from "../security/origin.js";
import { type AuditedCall, audited } from "./audited.js";
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

/** An audited pairing mutation: master token only, recorded under the canonical origin. */
function pairingCall(
  event: "origin.pair" | "origin.unpair",
  method: "PairOrigin" | "UnpairOrigin",
  origin: string,
): AuditedCall {
  return {
    event,
    method,
    subject: { kind: "origin", origin: auditedOrigin(origin) },
    guard: (caller) => requireMaster(caller, method),
  };
}

/** Origin pairing methods of the Daemon service. */
export function pairingService(deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  const store = deps.pairedOrigins;
  return {
    async pairOrigin(req, ctx) {
      // The store validates and normalises the origin and label (invalid_argument otherwise)
      // and writes the file before the token is handed out.
      const paired = await audited(
        deps,
        ctx,
        pairingCall("origin.pair", "PairOrigin", req.origin),
        () => store.pair(req.origin, req.label),
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

    async unpairOrigin(req, ctx) {
      await audited(deps, ctx, pairingCall("origin.unpair", "UnpairOrigin", req.origin), () =>
        store.unpair(req.origin),
      );
      return create(EmptySchema);
    },
  };
}
