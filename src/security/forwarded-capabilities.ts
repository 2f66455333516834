/**
 * Decoding of the `X-Seed-Capabilities` header (issue 7 item 6): base64url (no padding) of a
 * canonical DAG-CBOR array whose elements are byte strings, each the encoded bytes of one signed
 * Capability blob. A header that does not decode, breaks a limit or holds anything but byte
 * strings is {@link DomainError} `invalid_argument` with one fixed message; an element that the
 * injected decoder refuses proves nothing and is silently dropped.
 *
 * Limits: at most {@link MAX_FORWARDED_CAPABILITIES} elements, each at most
 * {@link MAX_FORWARDED_CAPABILITY_BYTES} bytes, at most {@link MAX_CAPABILITIES_HEADER_LENGTH}
 * header characters (which bounds the decoded total to 12 KiB). A typical signed capability is
 * about 200 to 300 bytes; Node refuses requests whose headers exceed 16 KiB in total anyway.
 *
 * @module
 */
import * as dagCbor from "@ipld/dag-cbor";
import { DomainError } from "../errors.js";
import {
  MAX_CAPABILITIES_HEADER_LENGTH,
  MAX_FORWARDED_CAPABILITIES,
  MAX_FORWARDED_CAPABILITY_BYTES,
} from "../wire.js";
import type { VerifiedCapability } from "./read-access.js";

/** The one message of every refused header; it never carries header content. */
export const CAPABILITIES_HEADER_ERROR_MESSAGE = "malformed capabilities header";
export {
  encodeCapabilitiesHeader,
  MAX_CAPABILITIES_HEADER_LENGTH,
  MAX_FORWARDED_CAPABILITIES,
  MAX_FORWARDED_CAPABILITY_BYTES,
} from "../wire.js";

const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;

function reject(): never {
  throw new DomainError("invalid_argument", CAPABILITIES_HEADER_ERROR_MESSAGE);
}

/**
 * Decodes the header into the raw blob bytes, without looking inside them.
 *
 * @param header - the header value, or undefined when absent.
 * @returns the blobs' bytes, in header order; `[]` when the header is absent.
 * @throws {DomainError} `invalid_argument` for anything but a well-formed header within limits.
 */
export function decodeCapabilitiesHeader(header: string | undefined): Uint8Array[] {
  if (header === undefined) return [];
  if (
    typeof header !== "string" ||
    header.length > MAX_CAPABILITIES_HEADER_LENGTH ||
    !BASE64URL_RE.test(header) ||
    header.length % 4 === 1
  ) {
    reject();
  }
  const buf = Buffer.from(header, "base64url");
  if (buf.toString("base64url") !== header) reject();
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let value: unknown;
  try {
    value = dagCbor.decode(bytes);
  } catch {
    reject();
  }
  if (!Array.isArray(value) || value.length > MAX_FORWARDED_CAPABILITIES) reject();
  const out: Uint8Array[] = [];
  for (const el of value) {
    if (!(el instanceof Uint8Array) || el.length > MAX_FORWARDED_CAPABILITY_BYTES) reject();
    out.push(el);
  }
  // An array of byte strings has one canonical encoding; the decoder already refuses
  // non-minimal lengths and indefinite lengths, this catches anything else.
  let canonical: Uint8Array;
  try {
    canonical = dagCbor.encode(out);
  } catch {
    reject();
  }
  if (!Buffer.from(canonical).equals(bytes)) reject();
  return out;
}

/**
 * Decodes and verifies a blob; returns undefined (or throws) when it is not a valid, correctly
 * signed Capability. Normally a wrapper around the blob codec's `decodeBlobOfType`.
 */
export type CapabilityDecoder = (bytes: Uint8Array) => VerifiedCapability | undefined;

/**
 * Decodes the header and verifies each blob with `decode`. Blobs the decoder refuses (returns
 * undefined or throws) are dropped without a trace; duplicates (same CID) are kept once.
 *
 * @throws {DomainError} `invalid_argument` when the header itself is malformed (see
 *   {@link decodeCapabilitiesHeader}).
 */
export function readForwardedCapabilities(
  header: string | undefined,
  decode: CapabilityDecoder,
): VerifiedCapability[] {
  const out: VerifiedCapability[] = [];
  const seen = new Set<string>();
  for (const bytes of decodeCapabilitiesHeader(header)) {
    let cap: VerifiedCapability | undefined;
    try {
      cap = decode(bytes);
    } catch {
      cap = undefined;
    }
    if (cap === undefined || seen.has(cap.cid)) continue;
    seen.add(cap.cid);
    out.push(cap);
  }
  return out;
}
