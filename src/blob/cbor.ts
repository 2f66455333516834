import * as dagCbor from "@ipld/dag-cbor";
import { BLOB_ERROR_MESSAGES, BlobError } from "./errors.js";

/**
 * Largest blob this daemon encodes or decodes: 2 MiB, Seed's own `MaxBlobSize`
 * (`backend/blob/blockstore.go`, chosen there for Bitswap's block size limit). A smaller limit
 * would refuse blobs that Seed accepts and syncs (large imported documents); a larger one would
 * be refused by every Seed peer.
 */
export const MAX_BLOB_SIZE = 2 * 1024 * 1024;

/** DAG-CBOR multicodec code. */
export const DAG_CBOR_CODE = 0x71;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Encodes a value as canonical DAG-CBOR (map keys sorted length-first then bytewise, minimal
 * integers, CIDs as tag 42). JS integers encode as CBOR integers; `undefined`, NaN and
 * Infinity are refused.
 *
 * @param value - an IPLD data model value.
 * @param maxSize - refuse results longer than this; defaults to {@link MAX_BLOB_SIZE}.
 * @throws {BlobError} `invalid_argument` when the value cannot be encoded or is too large.
 */
export function encodeCanonical(value: unknown, maxSize: number = MAX_BLOB_SIZE): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = dagCbor.encode(value);
  } catch {
    throw new BlobError(BLOB_ERROR_MESSAGES.badField);
  }
  if (bytes.length > maxSize) throw new BlobError(BLOB_ERROR_MESSAGES.tooLarge);
  return bytes;
}

/**
 * Decodes DAG-CBOR and insists it is the one canonical encoding of what it holds: the decoder is
 * strict (no indefinite lengths, no duplicate keys, minimal integers, no undefined/NaN), and the
 * value is re-encoded and compared byte for byte, which also catches unsorted map keys and
 * integral floats. Canonical input is what makes "signed over its encoding" well defined.
 *
 * @param bytes - untrusted bytes.
 * @param maxSize - refuse longer input before parsing; defaults to {@link MAX_BLOB_SIZE}.
 * @returns the decoded value (plain objects, arrays, Uint8Array, CID, number or bigint).
 * @throws {BlobError} `invalid_argument` for oversized, malformed or non-canonical input.
 */
export function decodeCanonical(bytes: Uint8Array, maxSize: number = MAX_BLOB_SIZE): unknown {
  if (!(bytes instanceof Uint8Array)) throw new BlobError(BLOB_ERROR_MESSAGES.malformed);
  if (bytes.length > maxSize) throw new BlobError(BLOB_ERROR_MESSAGES.tooLarge);
  let value: unknown;
  try {
    value = dagCbor.decode(bytes);
  } catch {
    // Also catches a RangeError from absurdly deep nesting.
    throw new BlobError(BLOB_ERROR_MESSAGES.malformed);
  }
  let again: Uint8Array;
  try {
    again = dagCbor.encode(value);
  } catch {
    throw new BlobError(BLOB_ERROR_MESSAGES.nonCanonical);
  }
  if (!sameBytes(again, bytes)) throw new BlobError(BLOB_ERROR_MESSAGES.nonCanonical);
  return value;
}
