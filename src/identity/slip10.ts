import { createHmac } from "node:crypto";
import { IdentityError } from "./errors.js";

/** Offset added to an index to make it hardened (BIP-32 `i ≥ 2^31`). */
export const HARDENED_OFFSET = 0x80000000;

// SLIP-0010 picks the HMAC key per curve so one seed never yields the same key on two curves.
const ED25519_CURVE_KEY = Buffer.from("ed25519 seed", "ascii");

/** A SLIP-0010 extended private key for Ed25519. */
export interface Slip10Node {
  /** 32-byte private key; for Ed25519 this is the RFC 8032 seed, not a scalar. */
  readonly key: Uint8Array;
  /** 32-byte chain code. */
  readonly chainCode: Uint8Array;
}

function splitHmac(i: Buffer): Slip10Node {
  const node = {
    key: new Uint8Array(i.subarray(0, 32)),
    chainCode: new Uint8Array(i.subarray(32)),
  };
  // HMAC output is the key itself; don't leave a second copy in a pooled Buffer.
  i.fill(0);
  return node;
}

/**
 * Derives the SLIP-0010 Ed25519 master node: `I = HMAC-SHA512("ed25519 seed", seed)`.
 *
 * @param seed - 16 to 64 bytes (a BIP-39 seed is 64).
 * @throws {IdentityError} `invalid_argument` for a seed outside 16..64 bytes.
 */
export function masterKeyFromSeed(seed: Uint8Array): Slip10Node {
  if (!(seed instanceof Uint8Array) || seed.length < 16 || seed.length > 64) {
    throw new IdentityError("invalid_argument", "SLIP-10 seed must be 16 to 64 bytes");
  }
  return splitHmac(createHmac("sha512", ED25519_CURVE_KEY).update(seed).digest());
}

/**
 * Derives a hardened child: `I = HMAC-SHA512(chainCode, 0x00 || key || ser32(index))`.
 *
 * @param parent - the parent node.
 * @param index - child index including {@link HARDENED_OFFSET}, i.e. in `2^31 .. 2^32-1`.
 * @throws {IdentityError} `invalid_argument` for a non-hardened or out-of-range index, since
 *   SLIP-0010 defines no normal derivation for Ed25519.
 */
export function deriveHardenedChild(parent: Slip10Node, index: number): Slip10Node {
  if (!Number.isInteger(index) || index < HARDENED_OFFSET || index > 0xffffffff) {
    throw new IdentityError(
      "invalid_argument",
      "SLIP-10 Ed25519 supports only hardened child indexes",
    );
  }
  const data = Buffer.alloc(1 + 32 + 4);
  data.set(parent.key, 1);
  data.writeUInt32BE(index, 33);
  try {
    return splitHmac(createHmac("sha512", parent.chainCode).update(data).digest());
  } finally {
    data.fill(0);
  }
}

const SEGMENT = /^(0|[1-9][0-9]*)(['hH]?)$/;

/**
 * Parses a derivation path such as `m/44'/104109'/0'` into child indexes (hardened offset
 * included). `'`, `h` and `H` all mark a hardened segment; `m` alone is the master node.
 *
 * @param path - the path text.
 * @returns the indexes, in order.
 * @throws {IdentityError} `invalid_argument` for malformed paths and for any non-hardened
 *   segment.
 */
export function parsePath(path: string): number[] {
  if (typeof path !== "string") {
    throw new IdentityError("invalid_argument", "derivation path must be a string");
  }
  const parts = path.split("/");
  if (parts[0] !== "m") {
    throw new IdentityError("invalid_argument", 'derivation path must start with "m"');
  }
  return parts.slice(1).map((segment) => {
    const match = SEGMENT.exec(segment);
    if (match === null) {
      throw new IdentityError("invalid_argument", "malformed derivation path segment");
    }
    const [, digits = "", mark = ""] = match;
    const n = Number(digits);
    if (n >= HARDENED_OFFSET) {
      throw new IdentityError("invalid_argument", "derivation path index out of range");
    }
    if (mark === "") {
      throw new IdentityError(
        "invalid_argument",
        "SLIP-10 Ed25519 supports only hardened path segments (like 0')",
      );
    }
    return n + HARDENED_OFFSET;
  });
}

/**
 * Derives the SLIP-0010 Ed25519 node at `path` from a seed.
 *
 * @param seed - 16 to 64 bytes, normally a BIP-39 seed.
 * @param path - hardened-only path, e.g. `m/44'/104109'/0'`.
 * @returns the node; its `key` is the Ed25519 seed for that path.
 * @throws {IdentityError} `invalid_argument` for a bad seed length or path.
 */
export function derivePath(seed: Uint8Array, path: string): Slip10Node {
  const indexes = parsePath(path);
  let node = masterKeyFromSeed(seed);
  for (const index of indexes) {
    const child = deriveHardenedChild(node, index);
    node.key.fill(0);
    node.chainCode.fill(0);
    node = child;
  }
  return node;
}
