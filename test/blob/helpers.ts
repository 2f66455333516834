// Test helpers that work independently of src/blob's encoder: a hand-written CBOR writer, a
// hand-written base32 CID string, and tweetnacl signatures.
import assert from "node:assert/strict";
import * as dagCbor from "@ipld/dag-cbor";
import nacl from "tweetnacl";
import { type BLOB_ERROR_MESSAGES, BlobError } from "../../src/blob/index.js";
import { keyFromMnemonic } from "../../src/identity/keys.js";
import { principalBytes, principalToString } from "../../src/identity/principal.js";

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));

/** A test key: seed, public key, principal string and wire bytes, and a SignFn. */
export interface TestKey {
  seed: Uint8Array;
  publicKey: Uint8Array;
  principal: string;
  wire: Uint8Array;
  sign: (data: Uint8Array) => Uint8Array;
}

/** Keys and signatures come from tweetnacl, so every signature is made outside node:crypto. */
export function testKey(seed: Uint8Array): TestKey {
  const { publicKey, secretKey } = nacl.sign.keyPair.fromSeed(seed);
  return {
    seed,
    publicKey,
    principal: principalToString(publicKey),
    wire: principalBytes(publicKey),
    sign: (data) => nacl.sign.detached(data, secretKey),
  };
}

export function mnemonicKey(words: string): TestKey {
  return testKey(keyFromMnemonic(words.split(" ")));
}

export const ABANDON_ABOUT =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
export const LEGAL_WINNER =
  "legal winner thank year wave sausage worth useful legal winner thank yellow";

// --- A minimal CBOR writer (RFC 8949 §3), for expected bytes that do not come from dag-cbor.

export function head(major: number, n: number | bigint): number[] {
  const v = BigInt(n);
  const m = major << 5;
  if (v < 24n) return [m | Number(v)];
  const width = v < 0x100n ? 1 : v < 0x10000n ? 2 : v < 0x100000000n ? 4 : 8;
  const info = { 1: 24, 2: 25, 4: 26, 8: 27 }[width] as number;
  const out = [m | info];
  for (let i = width - 1; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return out;
}
export const cUint = (n: number | bigint): number[] => head(0, n);
export const cText = (s: string): number[] => {
  const b = [...Buffer.from(s, "utf8")];
  return [...head(3, b.length), ...b];
};
export const cBytes = (b: Uint8Array): number[] => [...head(2, b.length), ...b];
export const cTrue: number[] = [0xf5];

/**
 * A CBOR map written in exactly the given key order; asserts that order is DAG-CBOR's
 * canonical one (shorter keys first, then bytewise), so the expected bytes are canonical.
 */
export function cMap(entries: Array<[string, number[]]>): number[] {
  for (let i = 1; i < entries.length; i++) {
    const a = Buffer.from((entries[i - 1] as [string, number[]])[0]);
    const b = Buffer.from((entries[i] as [string, number[]])[0]);
    assert.ok(a.length < b.length || (a.length === b.length && Buffer.compare(a, b) < 0));
  }
  return [...head(5, entries.length), ...entries.flatMap(([k, v]) => [...cText(k), ...v])];
}

// --- CID by hand: CIDv1 ‖ dag-cbor ‖ multihash(code, 32, digest), base32 lower, no padding.

export function base32(bytes: Uint8Array): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** `varint(0xb220)` = a0 e4 02, `varint(0x12)` = 12. */
export function handCid(hashCodeVarint: number[], digest: Uint8Array): string {
  return `b${base32(Uint8Array.from([0x01, 0x71, ...hashCodeVarint, 0x20, ...digest]))}`;
}

// --- Signing test blobs outside src/blob (for hostile or Seed-shaped inputs).

/** Signs `map` as Seed does (sig = 64 zero bytes, then the real one) with tweetnacl. */
export function naclSignMap(map: Record<string, unknown>, seed: Uint8Array): Uint8Array {
  const { secretKey } = nacl.sign.keyPair.fromSeed(seed);
  const unsigned = dagCbor.encode({ ...map, sig: new Uint8Array(64) });
  return dagCbor.encode({ ...map, sig: nacl.sign.detached(unsigned, secretKey) });
}

/** Cross-checks a blob's signature with tweetnacl, independently of node:crypto. */
export function naclVerifyBlob(bytes: Uint8Array, publicKey: Uint8Array): boolean {
  const map = dagCbor.decode(bytes) as Record<string, unknown>;
  const sig = map.sig as Uint8Array;
  const unsigned = dagCbor.encode({ ...map, sig: new Uint8Array(64) });
  return nacl.sign.detached.verify(unsigned, sig, publicKey);
}

/** Asserts `fn` throws a BlobError `invalid_argument` with the given fixed message. */
export function assertBlobError(
  fn: () => unknown,
  message: (typeof BLOB_ERROR_MESSAGES)[keyof typeof BLOB_ERROR_MESSAGES],
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BlobError, `expected BlobError, got ${String(err)}`);
    assert.equal(err.code, "invalid_argument");
    assert.equal(err.message, message);
    assert.equal(err.cause, undefined);
    return true;
  });
}
