/**
 * Token rotation (issue 9): the RotateToken method of the Daemon service, and the audited
 * rotation that SIGHUP shares with it.
 *
 * The token store owns the full token; this module only asks it to rotate and reports where the
 * new token is (its file path), never the token. The interceptor already keeps the web and
 * paired-origin tokens out (RotateToken is in neither scope); the handler checks again, because
 * a limited credential that could rotate the full token would lock the user out.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { AuditEvent, AuditLog } from "../audit/audit.js";
import { codeName, toConnectError } from "../errors.js";
import {
  type Daemon,
  RotateTokenResponseSchema,
} from "../gen/com/seed/daemon/v1alpha/daemon_pb.js";
import type { TokenRotation } from "../security/token-store.js";
import { callerOf, type ServiceDeps } from "./context.js";

/** Audit event name of a rotation, by RPC or by signal. */
export const TOKEN_ROTATE_EVENT = "token.rotate";

/** Who asked for a rotation, as its audit record names them. */
export type RotationRequester = Pick<
  AuditEvent,
  "method" | "remote_addr" | "credential" | "principal"
>;

/** How a rotation ended: the new file, or the secret-free reason it did not happen. */
export type RotationOutcome =
  | { readonly ok: true; readonly rotation: TokenRotation }
  | { readonly ok: false; readonly error: ConnectError; readonly reason: string };

/** Code and secret-free message, as a client gets them (just `internal` when hidden). */
function failure(err: unknown): { error: ConnectError; reason: string } {
  const error = toConnectError(err);
  const reason =
    error.code === Code.Internal ? "internal" : `${codeName(error.code)}: ${error.rawMessage}`;
  return { error, reason };
}

/**
 * Runs one rotation and leaves exactly one `token.rotate` record for it: `ok` (the reason names
 * the file), `error` with the code and message the client gets, or `denied`. Never throws.
 *
 * @param rotate - the token store's rotate operation
 * @param audit - where the record goes
 * @param by - the RPC caller, or the signal (`method: "SIGHUP"`)
 */
export function rotateAudited(
  rotate: () => TokenRotation,
  audit: Pick<AuditLog, "record">,
  by: RotationRequester,
): RotationOutcome {
  let outcome: RotationOutcome;
  try {
    outcome = { ok: true, rotation: rotate() };
  } catch (err) {
    outcome = { ok: false, ...failure(err) };
  }
  audit.record({
    ...by,
    event: TOKEN_ROTATE_EVENT,
    outcome: outcome.ok ? "ok" : "error",
    reason: outcome.ok
      ? `new token in ${JSON.stringify(outcome.rotation.tokenPath)}`
      : outcome.reason,
  });
  return outcome;
}

/** The RotateToken method of the Daemon service. */
export function tokenService(deps: ServiceDeps): Partial<ServiceImpl<typeof Daemon>> {
  return {
    rotateToken(_req, ctx) {
      const caller = callerOf(ctx);
      const by: RotationRequester = {
        method: "RotateToken",
        remote_addr: caller.remoteAddr,
        credential: caller.credential.kind,
        principal: caller.principal,
      };
      if (caller.credential.kind !== "master") {
        const denied = new ConnectError("RotateToken needs the full token", Code.PermissionDenied);
        deps.audit.record({
          ...by,
          event: TOKEN_ROTATE_EVENT,
          outcome: "denied",
          reason: failure(denied).reason,
        });
        throw denied;
      }
      const outcome = rotateAudited(deps.rotateToken, deps.audit, by);
      if (!outcome.ok) throw outcome.error;
      // The path only: the new token never leaves the daemon but through its file.
      return create(RotateTokenResponseSchema, { tokenPath: outcome.rotation.tokenPath });
    },
  };
}
