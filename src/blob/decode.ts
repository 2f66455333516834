import { parseCapability } from "./capability.js";
import { decodeCanonical, MAX_BLOB_SIZE } from "./cbor.js";
import { parseChange } from "./change.js";
import { cidForBytes, verifyCid } from "./cid.js";
import { fail, isWireMap, readPrincipal, type WireMap } from "./fields.js";
import { parseRef } from "./ref.js";
import { checkSignature } from "./signed.js";
import type { Blob, BlobType, EncodedBlob } from "./types.js";

const PARSERS: Readonly<Record<BlobType, (m: WireMap) => Blob>> = {
  Change: parseChange,
  Ref: parseRef,
  Capability: parseCapability,
};

/**
 * Decodes and fully verifies an untrusted signed blob: size (≤ {@link MAX_BLOB_SIZE}), the
 * claimed CID against the bytes (blake2b-256 or sha2-256, whichever it names), canonical
 * DAG-CBOR, a known `type`, every field and op (unknown ones refused), the shape rules of that
 * type, and the signature against the signer.
 *
 * @param bytes - the encoded blob.
 * @param claimedCid - the CID the sender says it has (string or binary); when absent the
 *   result carries the blake2b-256 CID.
 * @throws {BlobError} `invalid_argument`, with a fixed message, for anything wrong.
 */
export function decodeBlob(bytes: Uint8Array, claimedCid?: string | Uint8Array): EncodedBlob {
  if (!(bytes instanceof Uint8Array)) fail("malformed");
  if (bytes.length > MAX_BLOB_SIZE) fail("tooLarge");
  const cid = claimedCid === undefined ? cidForBytes(bytes) : verifyCid(bytes, claimedCid);
  const value = decodeCanonical(bytes);
  if (!isWireMap(value)) fail("badShape");
  const type = value.type;
  if (typeof type !== "string" || !Object.hasOwn(PARSERS, type)) fail("unknownType");
  const blob = PARSERS[type as BlobType](value);
  checkSignature(bytes, value, readPrincipal(value.signer).publicKey, blob.sig);
  return { cid: cid.string, cidBytes: cid.bytes, bytes, blob };
}

/**
 * {@link decodeBlob}, then requires the blob to be of one type (for example the capabilities a
 * caller forwards).
 *
 * @throws {BlobError} `invalid_argument` as {@link decodeBlob}, or for another type.
 */
export function decodeBlobOfType<T extends BlobType>(
  type: T,
  bytes: Uint8Array,
  claimedCid?: string | Uint8Array,
): EncodedBlob<Extract<Blob, { type: T }>> {
  const decoded = decodeBlob(bytes, claimedCid);
  if (decoded.blob.type !== type) fail("unknownType");
  return decoded as EncodedBlob<Extract<Blob, { type: T }>>;
}
