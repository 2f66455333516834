import { DomainError, type DomainErrorCode } from "../errors.js";

/** Why a set of changes could not be turned into a document. */
export type DocModelErrorReason =
  /** A change names a dep that is not in the set (yet): retry once it arrives. */
  | "missing_dependency"
  /** A requested head (version) is not among the document's changes. */
  | "unknown_head"
  /** A change or op breaks one of Seed's invariants; the change must be refused. */
  | "invalid_change";

const CODE: Readonly<Record<DocModelErrorReason, DomainErrorCode>> = {
  missing_dependency: "failed_precondition",
  unknown_head: "not_found",
  invalid_change: "invalid_argument",
};

/**
 * Raised when changes cannot be applied. Messages name CIDs, block ids and op ids only, never
 * content, so they are safe to return to the caller.
 */
export class DocModelError extends DomainError {
  /** Machine-readable reason; {@link DomainError.code} is derived from it. */
  readonly reason: DocModelErrorReason;

  /**
   * @param reason - why the change set was refused.
   * @param message - human-readable detail (CIDs and ids only).
   */
  constructor(reason: DocModelErrorReason, message: string) {
    super(CODE[reason], message);
    this.reason = reason;
  }
}
