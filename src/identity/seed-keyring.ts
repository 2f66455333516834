/**
 * Seed's legacy OS keyring item, read for `seed-daemon keys import-seed-keyring`.
 *
 * Seed (its Go daemon, `backend/core/keystore/os.go`, and its CLI) keeps every key of one
 * environment in a single keychain item: service `seed-daemon-<environment>` (`seed-daemon-main`,
 * or `seed-daemon-dev` for development builds), account `parentCollection` (on Linux the Secret
 * Service attributes `service` and `username`). The secret is a JSON object of key name → base64
 * (standard alphabet, padded, as Go encodes `[]byte`) of a libp2p Ed25519 private key protobuf:
 *
 * ```
 * 08 01 12 40 ‖ 32-byte Ed25519 seed ‖ 32-byte public key
 * ```
 *
 * The whole JSON may be wrapped as `go-keyring-base64:<base64 of the JSON>`, which Seed's CLI
 * writes (and go-keyring writes on macOS). This module only parses: it never writes the item.
 *
 * @module
 */

import { createPrivateKey, createPublicKey, timingSafeEqual } from "node:crypto";
import { IdentityError } from "./errors.js";

/** Account of Seed's keyring item, the same in every environment. */
export const SEED_KEYRING_ACCOUNT = "parentCollection";

/** Service of Seed's keyring item: `seed-daemon-main`, or `seed-daemon-dev` with `dev`. */
export function seedKeyringService(dev: boolean): string {
  return dev ? "seed-daemon-dev" : "seed-daemon-main";
}

/** One key of the item that decoded and whose public key matches its seed. */
export interface SeedKeyringKey {
  readonly name: string;
  /** 32-byte Ed25519 seed; the caller should zero it when done. */
  readonly seed: Uint8Array;
  /** 32-byte Ed25519 public key, checked against the seed. */
  readonly publicKey: Uint8Array;
}

/** One entry of the item that cannot be imported, and why (never quoting the value). */
export interface SeedKeyringProblem {
  readonly name: string;
  readonly problem: string;
}

/** What {@link parseSeedKeyring} found, in the item's order. */
export type SeedKeyringEntry =
  | ({ readonly ok: true } & SeedKeyringKey)
  | ({ readonly ok: false } & SeedKeyringProblem);

const GO_KEYRING_PREFIX = "go-keyring-base64:";
const LIBP2P_ED25519_HEADER = Uint8Array.of(0x08, 0x01, 0x12, 0x40);
const LIBP2P_KEY_LENGTH = LIBP2P_ED25519_HEADER.length + 32 + 32;
// A keychain item of a few dozen keys is a few KiB; the cap keeps a corrupt or hostile item
// from costing more than a moment to look at.
const MAX_ITEM_CHARS = 1024 * 1024;
const BASE64STD = /^[A-Za-z0-9+/]*={0,2}$/;
// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410), so that node:crypto derives its public key.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function malformed(detail: string): IdentityError {
  return new IdentityError("invalid_argument", `Seed's keyring item is malformed: ${detail}`);
}

/**
 * Standard base64 that decodes to exactly what it says: no characters Node would skip, no
 * non-canonical trailing bits. Returns undefined instead of throwing, so that no message is
 * ever built from the text.
 */
function strictBase64(text: string): Buffer | undefined {
  if (!BASE64STD.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64").replace(/=+$/, "") !== text.replace(/=+$/, "")) {
    bytes.fill(0);
    return undefined;
  }
  return bytes;
}

/** The Ed25519 public key of `seed`, computed by node:crypto (independent of `keys.ts`). */
function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  const der = Buffer.concat([PKCS8_ED25519_PREFIX, seed]);
  try {
    const spki = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" }))
      .export({ format: "der", type: "spki" })
      .subarray(-32);
    return new Uint8Array(spki);
  } finally {
    der.fill(0);
  }
}

function parseEntry(name: string, value: unknown): SeedKeyringEntry {
  if (typeof value !== "string") {
    return { ok: false, name, problem: "the value is not a base64 string" };
  }
  const raw = strictBase64(value);
  if (raw === undefined) return { ok: false, name, problem: "the value is not valid base64" };
  try {
    if (raw.length !== LIBP2P_KEY_LENGTH) {
      return {
        ok: false,
        name,
        problem: `the value holds ${raw.length} bytes, not the ${LIBP2P_KEY_LENGTH} of a libp2p Ed25519 private key`,
      };
    }
    if (!raw.subarray(0, LIBP2P_ED25519_HEADER.length).equals(LIBP2P_ED25519_HEADER)) {
      return {
        ok: false,
        name,
        problem: "the value is not a libp2p Ed25519 private key (header is not 08 01 12 40)",
      };
    }
    const seed = new Uint8Array(raw.subarray(4, 36));
    const publicKey = new Uint8Array(raw.subarray(36, 68));
    if (!timingSafeEqual(ed25519PublicKey(seed), publicKey)) {
      seed.fill(0);
      return { ok: false, name, problem: "the stored public key does not match the private key" };
    }
    return { ok: true, name, seed, publicKey };
  } finally {
    raw.fill(0);
  }
}

/**
 * Decodes Seed's keyring secret (see the module comment) into its entries, in the item's order.
 * An entry that cannot be used is reported with a reason that never quotes its value.
 *
 * @param secret - the item's secret, as the keychain returns it.
 * @throws {IdentityError} `invalid_argument` when the item as a whole is not Seed's format.
 */
export function parseSeedKeyring(secret: string): SeedKeyringEntry[] {
  if (secret.length > MAX_ITEM_CHARS) throw malformed("it is larger than 1 MiB");
  let json = secret.trim();
  if (json.startsWith(GO_KEYRING_PREFIX)) {
    const bytes = strictBase64(json.slice(GO_KEYRING_PREFIX.length));
    if (bytes === undefined) throw malformed(`the text after ${GO_KEYRING_PREFIX} is not base64`);
    json = bytes.toString("utf8");
    bytes.fill(0);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // No cause and no position: V8's message quotes the text around the error, i.e. key bytes.
    throw malformed("it is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw malformed("it is not a JSON object of key name to key");
  }
  return Object.entries(parsed).map(([name, value]) => parseEntry(name, value));
}
