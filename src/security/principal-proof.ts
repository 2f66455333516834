/**
 * Verification of a forwarded principal (`X-Seed-Principal` + `X-Seed-Principal-Proof`, issue 7
 * item 6): the login proof a browser makes and a web server forwards. The daemon checks it itself,
 * so a web server cannot act for a user who never signed in through it.
 *
 * Proof: base64url (no padding) of canonical DAG-CBOR
 * `{challenge: bytes(32), origin: string, nonce: bytes(16), sig: bytes(64)}`, where `challenge` is
 * an 8-byte big-endian Unix-ms issue time followed by 24 random bytes, and `sig` is the
 * principal's Ed25519 signature over `challenge ‖ UTF-8(origin) ‖ nonce`. The issue time must be
 * at most 30 days old and at most 5 minutes in the future; `origin` must be in the allowed set.
 *
 * Every failure is a {@link DomainError} `unauthenticated` with one fixed message: nothing from
 * the headers or from a library ever reaches an error, a log or a return value. The proof itself
 * is never returned.
 *
 * @module
 */
import { createHash } from "node:crypto";
import * as dagCbor from "@ipld/dag-cbor";
import { DomainError } from "../errors.js";
import { verify } from "../identity/keys.js";
import { parsePrincipal } from "../identity/principal.js";
import { LruCache } from "../util/lru.js";
import {
  CHALLENGE_LENGTH,
  NONCE_LENGTH,
  PROOF_MAX_AGE_MS,
  PROOF_MAX_FUTURE_MS,
  principalProofMessage,
  SIGNATURE_LENGTH,
} from "../wire.js";

export {
  CHALLENGE_LENGTH,
  encodePrincipalProof,
  NONCE_LENGTH,
  PROOF_MAX_AGE_MS,
  PROOF_MAX_FUTURE_MS,
  principalProofMessage,
  SIGNATURE_LENGTH,
} from "../wire.js";

/** The one message of every rejected proof; it never carries header content. */
export const PRINCIPAL_PROOF_ERROR_MESSAGE = "invalid or missing principal proof";

/** Longest accepted `X-Seed-Principal-Proof` header, in characters (checked before decoding). */
export const MAX_PROOF_HEADER_LENGTH = 1024;
/** Longest accepted `origin` in a proof, in UTF-8 bytes. */
export const MAX_PROOF_ORIGIN_BYTES = 512;
/** Default number of verified proofs kept in the cache. */
export const DEFAULT_PROOF_CACHE_ENTRIES = 1024;

/** Origins that may never be a proof's origin, whatever set the caller passes. */
const BUILT_IN_ORIGINS: ReadonlySet<string> = new Set(["null", "app://seed"]);
const PROOF_FIELDS = ["challenge", "nonce", "origin", "sig"] as const;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;

/** A principal whose proof verified. The proof itself is deliberately not part of it. */
export interface VerifiedPrincipal {
  /** `z6Mk…` principal, canonical spelling. */
  readonly principal: string;
  /** The origin the user signed in through. */
  readonly origin: string;
  /** Issue time of the challenge, Unix milliseconds. */
  readonly issuedAt: number;
}

/** What a proof is checked against. */
export interface ProofContext {
  /**
   * Origins a proof may name: the daemon's `--cors-origin` entries, normalised as the origin
   * policy normalises them. The caller leaves out `null`, `app://seed` and paired origins; the
   * first two are refused here anyway. Compared exactly.
   */
  readonly allowedOrigins: ReadonlySet<string>;
  /** Unix milliseconds. */
  readonly now: number;
}

function reject(): never {
  throw new DomainError("unauthenticated", PRINCIPAL_PROOF_ERROR_MESSAGE);
}

/** Strict base64url without padding: only the alphabet, a possible length, canonical tail bits. */
function decodeBase64url(s: string): Uint8Array {
  if (!BASE64URL_RE.test(s) || s.length % 4 === 1) reject();
  const bytes = Buffer.from(s, "base64url");
  // Re-encoding refuses non-zero unused tail bits, so one proof has exactly one spelling.
  if (bytes.toString("base64url") !== s) reject();
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isBytes(v: unknown, length: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length === length;
}

interface ParsedProof {
  readonly challenge: Uint8Array;
  readonly origin: string;
  readonly nonce: Uint8Array;
  readonly sig: Uint8Array;
}

function parseProof(header: string): ParsedProof {
  if (header.length > MAX_PROOF_HEADER_LENGTH) reject();
  const bytes = decodeBase64url(header);
  let value: unknown;
  try {
    value = dagCbor.decode(bytes);
  } catch {
    reject();
  }
  if (
    typeof value !== "object" ||
    value === null ||
    Array.isArray(value) ||
    Object.getPrototypeOf(value) !== Object.prototype
  ) {
    reject();
  }
  const m = value as Record<string, unknown>;
  const keys = Object.keys(m).sort();
  if (keys.length !== PROOF_FIELDS.length || keys.some((k, i) => k !== PROOF_FIELDS[i])) reject();
  const { challenge, origin, nonce, sig } = m;
  if (
    !isBytes(challenge, CHALLENGE_LENGTH) ||
    !isBytes(nonce, NONCE_LENGTH) ||
    !isBytes(sig, SIGNATURE_LENGTH) ||
    typeof origin !== "string" ||
    origin.length === 0 ||
    Buffer.byteLength(origin, "utf8") > MAX_PROOF_ORIGIN_BYTES
  ) {
    reject();
  }
  // Canonical DAG-CBOR only: the decoder refuses non-minimal lengths and duplicate keys but not
  // unsorted keys, so compare with the canonical re-encoding.
  let canonical: Uint8Array;
  try {
    canonical = dagCbor.encode({ challenge, origin, nonce, sig });
  } catch {
    reject();
  }
  if (!Buffer.from(canonical).equals(bytes)) reject();
  return { challenge, origin, nonce, sig };
}

/** Issue time from the challenge, or a rejection when it is outside the accepted window. */
function checkIssueTime(challenge: Uint8Array, now: number): number {
  const issued = Buffer.from(challenge.buffer, challenge.byteOffset, 8).readBigUInt64BE(0);
  if (issued > BigInt(Number.MAX_SAFE_INTEGER)) reject();
  const issuedAt = Number(issued);
  checkFresh(issuedAt, now);
  return issuedAt;
}

function checkFresh(issuedAt: number, now: number): void {
  if (
    !Number.isFinite(now) ||
    issuedAt < now - PROOF_MAX_AGE_MS ||
    issuedAt > now + PROOF_MAX_FUTURE_MS
  ) {
    reject();
  }
}

function checkOrigin(origin: string, allowed: ReadonlySet<string>): void {
  if (BUILT_IN_ORIGINS.has(origin) || !allowed.has(origin)) reject();
}

/** Options of {@link PrincipalProofVerifier}. */
export interface PrincipalProofVerifierOptions {
  /** Most verified proofs kept; default 1024. */
  readonly maxEntries?: number;
}

/**
 * Verifies forwarded principals, caching each verified (principal, proof) pair by the SHA-256 of
 * both headers in a bounded LRU cache. A cached entry is still checked against `now` and the
 * allowed origins on every use; failures are never cached. The signature check is
 * `identity/keys.verify`, which keeps recent public keys imported.
 */
export class PrincipalProofVerifier {
  readonly #proofs: LruCache<string, VerifiedPrincipal>;

  constructor(options: PrincipalProofVerifierOptions = {}) {
    const max = options.maxEntries ?? DEFAULT_PROOF_CACHE_ENTRIES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError("maxEntries must be a positive integer");
    }
    this.#proofs = new LruCache(max);
  }

  /** Number of cached verified proofs (for tests and metrics). */
  get cacheSize(): number {
    return this.#proofs.size;
  }

  /**
   * Checks the two headers of a request.
   *
   * @param principalHeader - `X-Seed-Principal`, or undefined when absent.
   * @param proofHeader - `X-Seed-Principal-Proof`, or undefined when absent.
   * @returns undefined when both headers are absent (no forwarded principal), else the verified
   *   principal.
   * @throws {DomainError} `unauthenticated` (fixed message) for one header without the other and
   *   for every malformed, stale, future, wrong-origin or wrongly-signed proof.
   */
  verifyHeaders(
    principalHeader: string | undefined,
    proofHeader: string | undefined,
    context: ProofContext,
  ): VerifiedPrincipal | undefined {
    if (principalHeader === undefined && proofHeader === undefined) return undefined;
    if (principalHeader === undefined || proofHeader === undefined) reject();
    return this.verify(principalHeader, proofHeader, context);
  }

  /**
   * Verifies one principal and its proof.
   *
   * @throws {DomainError} `unauthenticated` with {@link PRINCIPAL_PROOF_ERROR_MESSAGE}.
   */
  verify(principal: string, proof: string, context: ProofContext): VerifiedPrincipal {
    if (
      typeof principal !== "string" ||
      typeof proof !== "string" ||
      principal.length > 64 ||
      proof.length > MAX_PROOF_HEADER_LENGTH
    ) {
      reject();
    }
    const cacheKey = createHash("sha256")
      .update(principal, "utf8")
      .update("\n")
      .update(proof, "utf8")
      .digest("base64url");
    const cached = this.#proofs.get(cacheKey);
    if (cached !== undefined) {
      checkFresh(cached.issuedAt, context.now);
      checkOrigin(cached.origin, context.allowedOrigins);
      return cached;
    }

    let publicKey: Uint8Array;
    try {
      publicKey = parsePrincipal(principal);
    } catch {
      reject();
    }
    const parsed = parseProof(proof);
    const issuedAt = checkIssueTime(parsed.challenge, context.now);
    checkOrigin(parsed.origin, context.allowedOrigins);

    const message = principalProofMessage(parsed.challenge, parsed.origin, parsed.nonce);
    if (!verify(publicKey, message, parsed.sig)) reject();

    const result: VerifiedPrincipal = Object.freeze({ principal, origin: parsed.origin, issuedAt });
    this.#proofs.set(cacheKey, result);
    return result;
  }
}
