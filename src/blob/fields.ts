// Field readers shared by the blob decoders. Internal to src/blob: every failure is a BlobError
// with a fixed message, and nothing here ever quotes the value it refused.
import { CID } from "multiformats/cid";
import { IdentityError } from "../identity/errors.js";
import {
  parsePrincipal,
  principalBytes,
  principalToString,
  publicKeyFromPrincipalBytes,
} from "../identity/principal.js";
import { parseCid } from "./cid.js";
import { BLOB_ERROR_MESSAGES, BlobError } from "./errors.js";

/** A decoded DAG-CBOR map. */
export type WireMap = Record<string, unknown>;

export function fail(message: keyof typeof BLOB_ERROR_MESSAGES): never {
  throw new BlobError(BLOB_ERROR_MESSAGES[message]);
}

/** True for a plain decoded map (not an array, byte string or CID). */
export function isWireMap(v: unknown): v is WireMap {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Uint8Array) &&
    CID.asCID(v) === null
  );
}

/** Requires a map whose keys are all in `allowed`. */
export function expectMap(v: unknown, allowed: ReadonlySet<string>): WireMap {
  if (!isWireMap(v)) fail("badField");
  for (const key of Object.keys(v)) if (!allowed.has(key)) fail("unknownField");
  return v;
}

/** Requires an open-schema map (block content): any keys but `__proto__`. */
export function expectOpenMap(v: unknown): WireMap {
  if (!isWireMap(v)) fail("badField");
  // A later `Object.assign` or plain assignment by a consumer would turn this key into a
  // prototype change; no Seed block attribute is spelled like that.
  if (Object.hasOwn(v, "__proto__")) fail("badField");
  return v;
}

export function has(m: WireMap, key: string): boolean {
  return Object.hasOwn(m, key);
}

export function asString(v: unknown): string {
  if (typeof v !== "string") fail("badField");
  return v;
}

/** A present field must be a non-empty string: empty optionals are omitted, never sent. */
export function optNonEmptyString(m: WireMap, key: string): string | undefined {
  if (!has(m, key)) return undefined;
  const s = asString(m[key]);
  if (s.length === 0) fail("badField");
  return s;
}

/** Non-negative safe integer (CBOR integers decode to number when they are safe). */
export function asSafeUint(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail("badField");
  return v;
}

/** A present field must be a positive safe integer (zero is omitted, never sent). */
export function optPositiveInt(m: WireMap, key: string): number | undefined {
  if (!has(m, key)) return undefined;
  const n = asSafeUint(m[key]);
  if (n === 0) fail("badField");
  return n;
}

/** Any CBOR unsigned integer (up to 2^64-1), as a bigint. */
export function asUint64(v: unknown): bigint {
  if (typeof v === "number") return BigInt(asSafeUint(v));
  if (typeof v === "bigint" && v >= 0n && v < 1n << 64n) return v;
  fail("badField");
}

export function asArray(v: unknown): readonly unknown[] {
  if (!Array.isArray(v)) fail("badField");
  return v;
}

export function asStringArray(v: unknown): string[] {
  return asArray(v).map(asString);
}

export function asBytes(v: unknown, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array) || (length !== undefined && v.length !== length)) {
    fail("badField");
  }
  return v;
}

/** Wire principal (`0xed01` + 32-byte key) to its `z6Mk…` string and public key. */
export function readPrincipal(v: unknown): { principal: string; publicKey: Uint8Array } {
  try {
    const publicKey = publicKeyFromPrincipalBytes(asBytes(v));
    return { principal: principalToString(publicKey), publicKey };
  } catch (err) {
    if (err instanceof BlobError || err instanceof IdentityError) fail("badField");
    throw err;
  }
}

/** `z6Mk…` string (API input) to wire principal bytes. */
export function principalToWire(principal: string): Uint8Array {
  try {
    return principalBytes(parsePrincipal(principal));
  } catch (err) {
    if (err instanceof IdentityError) fail("badField");
    throw err;
  }
}

/** A link inside a blob: a CID object of a supported kind, returned as its string. */
export function readLink(v: unknown): string {
  const cid = CID.asCID(v);
  if (cid === null) fail("badField");
  return parseCid(cid.bytes).string;
}

/** CID string (API input) to the CID object dag-cbor encodes as a link. */
export function linkToWire(cid: string): CID {
  return CID.decode(parseCid(cid).bytes);
}

/** Byte order of binary CIDs, as Seed sorts deps (`cid.KeyString()`). */
export function compareCidStrings(a: string, b: string): number {
  const x = parseCid(a).bytes;
  const y = parseCid(b).bytes;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i] as number) - (y[i] as number);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}
