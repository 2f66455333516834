import { DomainError } from "../errors.js";

/**
 * Every message a {@link BlobError} can carry. Blobs are untrusted input, so messages are fixed
 * strings: they never echo a field value, a CID the caller sent, or a library's error text.
 */
export const BLOB_ERROR_MESSAGES = {
  tooLarge: "blob is too large",
  malformed: "blob is not valid DAG-CBOR",
  nonCanonical: "blob is not canonical DAG-CBOR",
  badCid: "unsupported or malformed CID",
  cidMismatch: "blob does not match its CID",
  unknownType: "unknown blob type",
  unknownField: "unknown blob field",
  unknownOp: "unknown change op",
  badField: "invalid blob field",
  badShape: "invalid blob structure",
  badSignature: "invalid blob signature",
} as const;

/** One of {@link BLOB_ERROR_MESSAGES}. */
export type BlobErrorMessage = (typeof BLOB_ERROR_MESSAGES)[keyof typeof BLOB_ERROR_MESSAGES];

/**
 * The one error `src/blob` throws on purpose: always `invalid_argument`, always with a fixed
 * message from {@link BLOB_ERROR_MESSAGES}, never with a `cause` (a library error could quote
 * the input).
 */
export class BlobError extends DomainError<"invalid_argument"> {
  override readonly name = "BlobError";

  /** @param message - one of {@link BLOB_ERROR_MESSAGES}. */
  constructor(message: BlobErrorMessage) {
    super("invalid_argument", message);
  }
}

/**
 * Type guard for {@link BlobError}.
 *
 * @param err - any thrown value.
 */
export function isBlobError(err: unknown): err is BlobError {
  return err instanceof BlobError;
}
