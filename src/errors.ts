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
  const storage = storageFailure(err);
  if (storage !== undefined) return new ConnectError(storage.message, storage.code);
  return new ConnectError("internal error", Code.Internal);
}

/** True when toConnectError would hide the error (so it deserves an error log line). */
export function isUnexpectedError(err: unknown): boolean {
  return toConnectError(err).code === Code.Internal && !(err instanceof ConnectError);
}

/** A write to the data dir that the machine refused, as {@link storageFailure} names it. */
export interface StorageFailure {
  /** `resource_exhausted` for a full disk or quota, `unavailable` for a read-only one. */
  readonly code: Code.ResourceExhausted | Code.Unavailable;
  /** Fixed text for the caller; never the library's message or a path. */
  readonly message: string;
  /** The errno or SQLite code, for the operator's log line. */
  readonly cause: string;
}

const DISK_FULL = "the daemon's disk is full: nothing was written";
const READ_ONLY = "the daemon's data directory is read-only: nothing was written";

/** System error codes of a write the filesystem refused, by what the caller is told. */
const ERRNO_FAILURES: Readonly<Record<string, StorageFailure["code"]>> = {
  ENOSPC: Code.ResourceExhausted,
  EDQUOT: Code.ResourceExhausted,
  EROFS: Code.Unavailable,
};

/**
 * Classifies a failed write to the data dir: SQLite's `SQLITE_FULL` / `SQLITE_READONLY*` (from
 * better-sqlite3's `SqliteError`) and the `ENOSPC`, `EDQUOT` and `EROFS` system errors of a file
 * write. Both leave the store unchanged (a failed SQLite transaction rolls back; an atomic file
 * write removes its temp file), so the caller may retry once the operator has made room. Matched
 * on the error's shape (a SqliteError's name, a system error's `syscall`), never on its message.
 *
 * @returns The failure, or `undefined` for any other error.
 */
export function storageFailure(err: unknown): StorageFailure | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string") return undefined;
  if (err.name === "SqliteError") {
    if (code === "SQLITE_FULL")
      return { code: Code.ResourceExhausted, message: DISK_FULL, cause: code };
    if (code.startsWith("SQLITE_READONLY"))
      return { code: Code.Unavailable, message: READ_ONLY, cause: code };
    return undefined;
  }
  const mapped =
    typeof (err as { syscall?: unknown }).syscall === "string" ? ERRNO_FAILURES[code] : undefined;
  if (mapped === undefined) return undefined;
  return {
    code: mapped,
    message: mapped === Code.Unavailable ? READ_ONLY : DISK_FULL,
    cause: code,
  };
}

/** Connect's wire name of a code (`invalid_argument`), as JSON error bodies and the docs spell it. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}
