import { createHash } from "node:crypto";
import { blake2b } from "@noble/hashes/blake2.js";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { DAG_CBOR_CODE } from "./cbor.js";
import { BLOB_ERROR_MESSAGES, BlobError } from "./errors.js";

/** Multihash code of blake2b-256, the hash Seed's daemon addresses blobs by. */
export const BLAKE2B_256_CODE = 0xb220;
/** Multihash code of sha2-256, the hash Seed's JS SDK addresses blobs by. */
export const SHA2_256_CODE = 0x12;

/** Hashes a blob CID may name. */
export type CidHash = "blake2b-256" | "sha2-256";

/** A blob's CID in both forms. */
export interface BlobCid {
  /** Base32 string form (`bafy…`), what the API and `version` strings use. */
  readonly string: string;
  /** Binary CID, what links inside blobs and database keys use. */
  readonly bytes: Uint8Array;
  /** The hash the CID names. */
  readonly hash: CidHash;
}

// A CIDv1 of a 32-byte digest is 36 bytes, 59 base32 characters; anything much longer is not
// a CID we accept, and is refused before any base decoding runs.
const MAX_CID_STRING_LENGTH = 128;
const DIGEST_LENGTH = 32;

function digestOf(bytes: Uint8Array, hash: CidHash): Uint8Array {
  if (hash === "blake2b-256") return blake2b(bytes, { dkLen: DIGEST_LENGTH });
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

function hashName(code: number): CidHash | undefined {
  if (code === BLAKE2B_256_CODE) return "blake2b-256";
  if (code === SHA2_256_CODE) return "sha2-256";
  return undefined;
}

function toBlobCid(cid: CID): BlobCid {
  const hash = hashName(cid.multihash.code);
  if (
    cid.version !== 1 ||
    cid.code !== DAG_CBOR_CODE ||
    hash === undefined ||
    cid.multihash.digest.length !== DIGEST_LENGTH
  ) {
    throw new BlobError(BLOB_ERROR_MESSAGES.badCid);
  }
  return { string: cid.toString(), bytes: cid.bytes, hash };
}

/**
 * Computes the CIDv1 (codec dag-cbor) of encoded blob bytes.
 *
 * @param bytes - the encoded blob.
 * @param hash - defaults to blake2b-256, as Seed's daemon does.
 */
export function cidForBytes(bytes: Uint8Array, hash: CidHash = "blake2b-256"): BlobCid {
  const code = hash === "blake2b-256" ? BLAKE2B_256_CODE : SHA2_256_CODE;
  return toBlobCid(CID.createV1(DAG_CBOR_CODE, Digest.create(code, digestOf(bytes, hash))));
}

/**
 * Parses a blob CID from its string (any multibase `multiformats` knows; the result is base32)
 * or binary form. Only CIDv1, codec dag-cbor, with a 32-byte blake2b-256 or sha2-256 digest.
 *
 * @throws {BlobError} `invalid_argument` for anything else.
 */
export function parseCid(cid: string | Uint8Array): BlobCid {
  let parsed: CID;
  try {
    if (typeof cid === "string") {
      if (cid.length === 0 || cid.length > MAX_CID_STRING_LENGTH) throw new Error();
      parsed = CID.parse(cid);
    } else if (cid instanceof Uint8Array) {
      parsed = CID.decode(cid);
    } else {
      throw new Error();
    }
  } catch {
    throw new BlobError(BLOB_ERROR_MESSAGES.badCid);
  }
  return toBlobCid(parsed);
}

/**
 * Checks that `claimed` is the CID of `bytes`, hashing with whichever supported hash it names.
 *
 * @returns the claimed CID, normalised.
 * @throws {BlobError} `invalid_argument` for an unsupported CID or a mismatch.
 */
export function verifyCid(bytes: Uint8Array, claimed: string | Uint8Array): BlobCid {
  const want = parseCid(claimed);
  const got = cidForBytes(bytes, want.hash);
  if (got.string !== want.string) throw new BlobError(BLOB_ERROR_MESSAGES.cidMismatch);
  return want;
}

/** Returns the library CID object for a parsed blob CID (for embedding as a link). */
export function cidObject(cid: BlobCid): CID {
  return CID.decode(cid.bytes);
}
