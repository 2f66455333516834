/**
 * The one way a service leaves audit records: {@link audited} for a call (key methods,
 * pairing, and later writes), {@link recordAudit} for a bare decision (a private read granted
 * or denied).
 *
 * @module
 */

import { Code, type HandlerContext } from "@connectrpc/connect";
import type { AuditLog, AuditOutcome, AuditSubject } from "../audit/audit.js";
import { subjectFields } from "../audit/audit.js";
import { codeName, toConnectError } from "../errors.js";
import type { Caller } from "../security/caller.js";
import { callerOf } from "./context.js";

/** One audited call. The object is the call's record-to-be: `run` may fill in what it learns. */
export interface AuditedCall<S extends AuditSubject = AuditSubject> {
  /** Event name, e.g. `key.sign`. */
  readonly event: string;
  /** RPC method name, e.g. `SignData`. */
  readonly method: string;
  /** What the call is about; mutable so that a late-learnt field (a key's name) is recorded. */
  readonly subject: S;
  /**
   * Refusal checked before `run` (credential, mode). Whatever it throws is recorded as
   * `denied` and rethrown.
   */
  readonly guard?: ((caller: Caller) => void) | undefined;
  /** Extra text for the reason of a successful call. */
  detail?: string | undefined;
}

/** The part of the service deps this module needs. */
export interface AuditDeps {
  readonly audit: Pick<AuditLog, "record">;
}

/**
 * Writes one record about `subject` for the caller of `ctx`.
 *
 * @param outcome - `granted` / `denied` for an access decision; `ok` / `error` / `denied` for
 *   a call (use {@link audited} for those).
 * @param reason - secret-free text; the subject's own suffix (a file path) is appended.
 */
export function recordAudit(
  deps: AuditDeps,
  ctx: HandlerContext,
  event: string,
  method: string,
  subject: AuditSubject,
  outcome: AuditOutcome,
  reason?: string,
): void {
  const caller = callerOf(ctx);
  const { fields, reasonSuffix } = subjectFields(subject);
  const text = [reason, reasonSuffix].filter((p) => p !== undefined && p !== "").join("; ");
  deps.audit.record({
    ...fields,
    event,
    method,
    remote_addr: caller.remoteAddr,
    credential: caller.credential.kind,
    principal: caller.principal,
    outcome,
    reason: text === "" ? undefined : text,
  });
}

/** Code and secret-free message, as the client gets them (just `internal` when hidden). */
function failureReason(err: unknown): { code: Code; reason: string } {
  const ce = toConnectError(err);
  return {
    code: ce.code,
    reason: ce.code === Code.Internal ? "internal" : `${codeName(ce.code)}: ${ce.rawMessage}`,
  };
}

/**
 * Runs one audited call and leaves exactly one record for it, whatever the outcome: `ok`;
 * `denied` when the guard refuses, or for `permission_denied` / `unauthenticated` from `run`;
 * `error` for the rest. A failure's reason is the Connect code name and the message the client
 * gets, which `toConnectError` keeps secret-free.
 */
export async function audited<T, S extends AuditSubject>(
  deps: AuditDeps,
  ctx: HandlerContext,
  call: AuditedCall<S>,
  run: () => T | Promise<T>,
): Promise<T> {
  const record = (outcome: AuditOutcome, reason?: string) =>
    recordAudit(deps, ctx, call.event, call.method, call.subject, outcome, reason);
  if (call.guard !== undefined) {
    try {
      call.guard(callerOf(ctx));
    } catch (err) {
      record("denied", failureReason(err).reason);
      throw err;
    }
  }
  let result: T;
  try {
    result = await run();
  } catch (err) {
    const { code, reason } = failureReason(err);
    const denied = code === Code.PermissionDenied || code === Code.Unauthenticated;
    record(denied ? "denied" : "error", reason);
    throw err;
  }
  record("ok", call.detail);
  return result;
}
