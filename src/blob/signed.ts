// What all signed blobs share: the base fields, building with a signing callback, and checking
// a decoded blob's signature against its own bytes.
import { SIGNATURE_LENGTH } from "../identity/keys.js";
import { encodeCanonical } from "./cbor.js";
import { cidForBytes } from "./cid.js";
import {
  asBytes,
  asSafeUint,
  fail,
  has,
  principalToWire,
  readPrincipal,
  type WireMap,
} from "./fields.js";
import { type SignFn, verifyEd25519 } from "./signature.js";
import type { Blob, EncodedBlob } from "./types.js";

/** Keys every signed blob has. */
export const BASE_FIELDS = ["type", "signer", "sig", "ts"] as const;

/** Reads and checks `signer`, `sig` and `ts`. */
export function readBase(m: WireMap): {
  signer: string;
  publicKey: Uint8Array;
  sig: Uint8Array;
  ts: number;
} {
  if (!has(m, "signer") || !has(m, "sig") || !has(m, "ts")) fail("badField");
  const { principal, publicKey } = readPrincipal(m.signer);
  return {
    signer: principal,
    publicKey,
    sig: asBytes(m.sig, SIGNATURE_LENGTH),
    ts: asSafeUint(m.ts),
  };
}

/** Checks a builder's `ts`: an integer number of Unix milliseconds. */
export function checkTs(ts: unknown): number {
  return asSafeUint(ts);
}

/**
 * Signs and encodes a blob map built by one of the builders. `parse` is the decoder's own
 * validator, so a builder can only emit what the decoder accepts.
 */
export function buildSigned<T extends Blob>(
  map: WireMap,
  signer: string,
  sign: SignFn,
  parse: (m: WireMap) => T,
): EncodedBlob<T> {
  map.signer = principalToWire(signer);
  map.sig = new Uint8Array(SIGNATURE_LENGTH);
  const parsed = parse(map);
  const unsigned = encodeCanonical(map);
  const sig = sign(unsigned);
  const { publicKey } = readPrincipal(map.signer);
  if (!(sig instanceof Uint8Array) || !verifyEd25519(publicKey, unsigned, sig)) {
    // The callback signed with another key, or returned junk: never emit such a blob.
    fail("badSignature");
  }
  map.sig = new Uint8Array(sig);
  const bytes = encodeCanonical(map);
  const cid = cidForBytes(bytes);
  return { cid: cid.string, cidBytes: cid.bytes, bytes, blob: { ...parsed, sig: map.sig } };
}

// `"sig"` as a CBOR text string, then the header of a 64-byte byte string.
const SIG_PREFIX = Uint8Array.of(0x63, 0x73, 0x69, 0x67, 0x58, 0x40);

/**
 * The bytes the signer signed: `bytes` with `sig` set to 64 zero bytes. `bytes` is canonical, so
 * that is `bytes` with the signature's own 64 bytes zeroed, found by searching for the key and
 * the signature together. Only when that pattern is ambiguous (crafted to appear twice) is the
 * map re-encoded.
 */
function unsignedBytes(bytes: Uint8Array, map: WireMap, sig: Uint8Array): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pattern = Buffer.concat([SIG_PREFIX, sig]);
  const at = buf.indexOf(pattern);
  if (at >= 0 && buf.indexOf(pattern, at + 1) < 0) {
    const out = new Uint8Array(bytes);
    out.fill(0, at + SIG_PREFIX.length, at + pattern.length);
    return out;
  }
  return encodeCanonical({ ...map, sig: new Uint8Array(SIGNATURE_LENGTH) });
}

/** Verifies a decoded blob's signature against its signer. */
export function checkSignature(
  bytes: Uint8Array,
  map: WireMap,
  publicKey: Uint8Array,
  sig: Uint8Array,
): void {
  if (!verifyEd25519(publicKey, unsignedBytes(bytes, map, sig), sig)) fail("badSignature");
}
