import { Code, ConnectError } from "@connectrpc/connect";

/** Codes a domain error may carry; the names are Connect's wire names. */
export type DomainErrorCode =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "failed_precondition"
  | "unauthenticated"
  | "resource_exhausted"
  | "unimplemented"
  | "unavailable";

/**
 * Base of every error a domain module (identity, keystore, pairing) raises on purpose. The
 * message is shown to the caller as it is, so it must never hold a secret; the code picks the
 * Connect status. Modules below the service layer stay free of Connect.
 */
export class DomainError<C extends DomainErrorCode = DomainErrorCode> extends Error {
  /** Connect code name for the failure. */
  readonly code: C;

  /**
   * @param code - Connect code name for the failure.
   * @param message - human-readable reason; must be free of secrets.
   * @param options - standard `ErrorOptions` (only pass a `cause` that holds no secret).
   */
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

const CODE_BY_NAME: Readonly<Record<DomainErrorCode, Code>> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  permission_denied: Code.PermissionDenied,
  failed_precondition: Code.FailedPrecondition,
  unauthenticated: Code.Unauthenticated,
  resource_exhausted: Code.ResourceExhausted,
  unimplemented: Code.Unimplemented,
  unavailable: Code.Unavailable,
};

/**
 * The one place where errors become Connect errors. ConnectErrors pass through; DomainErrors keep
 * their (secret-free) message; anything else becomes `internal` with no detail, because an
 * unexpected error message may carry anything. Matching on the class, not on a `code` property,
 * keeps a library error whose `code` happens to look like ours from leaking its message.
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof DomainError)
    return new ConnectError(err.message, CODE_BY_NAME[err.code as DomainErrorCode]);
  return new ConnectError("internal error", Code.Internal);
}

/** True when toConnectError would hide the error (so it deserves an error log line). */
export function isUnexpectedError(err: unknown): boolean {
  return toConnectError(err).code === Code.Internal && !(err instanceof ConnectError);
}

/** Connect's wire name of a code (`invalid_argument`), as JSON error bodies and the docs spell it. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
