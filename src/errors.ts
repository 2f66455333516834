import { Code, ConnectError } from "@connectrpc/connect";

/** Error codes that domain modules may carry; the names are Connect's. */
const CODE_BY_NAME: Readonly<Record<string, Code>> = {
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
 * The one place where errors become Connect errors. ConnectErrors pass through; domain errors
 * with a known `code` keep their (secret-free) message; anything else becomes `internal` with no
 * detail, because an unexpected error message may carry anything.
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && Object.hasOwn(CODE_BY_NAME, code)) {
      return new ConnectError(err.message, CODE_BY_NAME[code]);
    }
  }
  return new ConnectError("internal error", Code.Internal);
}

/** True when toConnectError would hide the error (so it deserves an error log line). */
export function isUnexpectedError(err: unknown): boolean {
  return toConnectError(err).code === Code.Internal && !(err instanceof ConnectError);
}
