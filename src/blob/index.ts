/**
 * Seed's signed blob formats, byte for byte: canonical DAG-CBOR, CIDv1 dag-cbor with
 * blake2b-256 (sha2-256 accepted), Ed25519 signatures over the encoding with `sig` zeroed.
 * Principals are `z6Mk…` strings and links are CID strings at this API; the wire forms stay
 * inside this module. Private keys never enter it: signing goes through a {@link SignFn}.
 *
 * @module
 */
export {
  type CapabilityInput,
  createCapability,
  MAX_CAPABILITY_LABEL_BYTES,
} from "./capability.js";
export { DAG_CBOR_CODE, decodeCanonical, encodeCanonical, MAX_BLOB_SIZE } from "./cbor.js";
export {
  type ChangeInput,
  checkChangeDeps,
  createChange,
  createHomeGenesisChange,
  isGenesisChange,
} from "./change.js";
export {
  BLAKE2B_256_CODE,
  type BlobCid,
  type CidHash,
  cidForBytes,
  parseCid,
  SHA2_256_CODE,
  verifyCid,
} from "./cid.js";
export { decodeBlob, decodeBlobOfType } from "./decode.js";
export { BLOB_ERROR_MESSAGES, BlobError, type BlobErrorMessage, isBlobError } from "./errors.js";
export { createRef, type RefInput, refSpace } from "./ref.js";
export { type SignFn, verifyEd25519 } from "./signature.js";
export type * from "./types.js";
