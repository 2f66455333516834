import { DomainError } from "../errors.js";

/**
 * Error codes an identity or keystore operation can fail with. The strings are Connect code
 * names on purpose: the service layer maps them one to one, so no module below it needs to
 * know about Connect.
 */
export type IdentityErrorCode =
  | "invalid_argument"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted";

/**
 * The one error type thrown by `src/identity` and `src/store/keystore`.
 *
 * Messages are written to be shown to the caller as they are, so they must never contain key
 * material, mnemonic words, passwords or passphrases. A `cause` is only attached when it cannot
 * carry a secret either.
 */
export class IdentityError extends DomainError<IdentityErrorCode> {
  override readonly name = "IdentityError";
}

/**
 * Type guard for {@link IdentityError}, optionally narrowed to one code.
 *
 * @param err - any thrown value.
 * @param code - when given, the error must also carry this code.
 */
export function isIdentityError(err: unknown, code?: IdentityErrorCode): err is IdentityError {
  return err instanceof IdentityError && (code === undefined || err.code === code);
}
