import { createHash } from "node:crypto";
import { decodeBlobOfType } from "../blob/index.js";
import { LruCache } from "../util/lru.js";
import type { Credential } from "./caller.js";
import { readForwardedCapabilities } from "./forwarded-capabilities.js";
import { PrincipalProofVerifier } from "./principal-proof.js";
import type { VerifiedCapability } from "./read-access.js";

/** Verified capability blobs kept by the hash of their bytes, so a repeated header costs a hash. */
const CAPABILITY_CACHE_ENTRIES = 4096;

/** What a request says about the browser user behind it, once verified. */
export interface ForwardedIdentity {
  /** The principal whose login proof checked out, if one was forwarded. */
  readonly principal: string | undefined;
  /** Forwarded capabilities whose blob and signature checked out. */
  readonly capabilities: readonly VerifiedCapability[];
}

const NONE: ForwardedIdentity = Object.freeze({ principal: undefined, capabilities: [] });

/**
 * Turns the forwarding headers of a full- or web-token request into a verified identity: the
 * principal only with a valid login proof for one of the operator's `--cors-origin` entries, the
 * capabilities only as far as their blobs verify. Both verifications are cached.
 */
export class ForwardedIdentityResolver {
  readonly #proofs = new PrincipalProofVerifier();
  readonly #capabilities = new LruCache<string, VerifiedCapability | null>(
    CAPABILITY_CACHE_ENTRIES,
  );
  readonly #allowedOrigins: ReadonlySet<string>;

  /**
   * @param allowedOrigins - normalised `--cors-origin` entries a login proof may name (never the
   *   built-in `null`/`app://seed`, never paired origins)
   */
  constructor(allowedOrigins: Iterable<string>) {
    this.#allowedOrigins = new Set(allowedOrigins);
  }

  /**
   * @throws DomainError `unauthenticated` for a bad or missing proof, `invalid_argument` for a
   *   capabilities header that does not decode
   */
  resolve(
    credential: Credential,
    headers: { principal?: string; proof?: string; capabilities?: string },
    now: number,
  ): ForwardedIdentity {
    if (credential.kind === "origin") return NONE;
    if (
      headers.principal === undefined &&
      headers.proof === undefined &&
      headers.capabilities === undefined
    ) {
      return NONE;
    }
    const verified = this.#proofs.verifyHeaders(headers.principal, headers.proof, {
      allowedOrigins: this.#allowedOrigins,
      now,
    });
    const capabilities = readForwardedCapabilities(headers.capabilities, (bytes) =>
      this.#capability(bytes),
    );
    return { principal: verified?.principal, capabilities };
  }

  #capability(bytes: Uint8Array): VerifiedCapability | undefined {
    const key = createHash("sha256").update(bytes).digest("base64url");
    const cached = this.#capabilities.get(key);
    if (cached !== undefined) return cached ?? undefined;
    let cap: VerifiedCapability | null = null;
    try {
      const { cid, blob } = decodeBlobOfType("Capability", bytes);
      cap = {
        cid,
        signer: blob.signer,
        delegate: blob.delegate,
        audience: blob.audience,
        path: blob.path,
        role: blob.role,
        exp: blob.exp,
        noRecursive: blob.noRecursive,
      };
    } catch {
      // A blob that fails verification proves nothing; the request goes on without it.
    }
    this.#capabilities.set(key, cap);
    return cap ?? undefined;
  }
}
