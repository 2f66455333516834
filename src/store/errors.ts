import { DomainError, type DomainErrorCode } from "../errors.js";

/**
 * Every message a {@link StoreError} can carry. Fixed strings: they never echo a path, a CID, a
 * version or a page token the caller sent, nor a library's error text.
 */
export const STORE_ERROR_MESSAGES = {
  badPath: "invalid document path",
  badPageToken: "invalid page token",
  badPageSize: "invalid page size",
  badVersion: "invalid document version",
  versionNotFound: "document version not found",
  documentNotFound: "document not found",
  baseVersionRequired: "base version is required for an existing document",
  baseVersionNotFound: "base version not found",
  homeNotDeletable: "the home document cannot be deleted",
  homePrivate: "the home document cannot be private",
  homeGenesisSigner: "only the account owner can create its home document",
  visibilityChange: "document visibility cannot be changed",
  missingDeps: "change dependencies are not available",
  badDeps: "change does not follow its dependencies",
  missingGenesis: "document genesis is not available",
  missingHeads: "ref heads are not available",
  badHeads: "ref heads do not form a valid document",
  refVisibility: "ref visibility differs from the document's",
  refNotAuthorized: "ref signer may not write this document",
  redirectUnsupported: "redirect refs are not supported",
  badChange: "change cannot be applied to the document",
  noOps: "a change needs at least one op",
  noEffect: "the changes leave the document as it is",
  corrupt: "stored document is inconsistent",
} as const;

/** One of {@link STORE_ERROR_MESSAGES}. */
export type StoreErrorMessage = (typeof STORE_ERROR_MESSAGES)[keyof typeof STORE_ERROR_MESSAGES];

/** The error the blob and document store throws on purpose; never carries a `cause`. */
export class StoreError extends DomainError {
  override readonly name = "StoreError";

  /**
   * @param code - Connect code name.
   * @param message - one of {@link STORE_ERROR_MESSAGES}.
   */
  constructor(code: DomainErrorCode, message: StoreErrorMessage) {
    super(code, message);
  }
}
