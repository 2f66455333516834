import type { Credential } from "./caller.js";
import { type MasterToken, tokenDigest } from "./token-store.js";

/**
 * A token check: the full token (a running daemon's `FullToken`, whose token may be
 * rotated, so each call checks the current one) or a fixed {@link MasterToken}.
 */
export interface TokenVerifier {
  /** Constant-time: true when `candidate` (a token hashed with `tokenDigest`) is the token. */
  verifyDigest(candidate: Buffer): boolean;
}

/** A source of origin-bound tokens (the paired-origin store). */
export interface OriginTokenVerifier {
  /** True when `digest` (a token hashed with `tokenDigest`) is the token paired with `origin`. */
  verifyTokenDigest(digest: Buffer, origin: string | undefined): boolean;
}

/**
 * Decides which credential a bearer token is. The master and web tokens work from any request
 * that passed the origin policy; an origin-bound token only from its own origin.
 */
export class Authenticator {
  readonly #master: TokenVerifier;
  readonly #origins: OriginTokenVerifier | undefined;
  readonly #web: MasterToken | undefined;

  /**
   * @param master - the full token; asked on every call, so a rotation takes effect at once
   * @param origins - the paired origins' tokens
   * @param web - the web token, when one is configured (reads only)
   */
  constructor(master: TokenVerifier, origins?: OriginTokenVerifier, web?: MasterToken) {
    this.#master = master;
    this.#origins = origins;
    this.#web = web;
  }

  /**
   * @param token the bearer token, or undefined when none was sent
   * @param origin the request's normalised Origin, or undefined
   */
  authenticate(token: string | undefined, origin: string | undefined): Credential | undefined {
    if (token === undefined) return undefined;
    // Hashed once here, then compared with each token's digest (a refused token is compared
    // with all of them, so a flood of wrong tokens costs one hash per request).
    const digest = tokenDigest(token);
    if (this.#master.verifyDigest(digest)) return MASTER;
    if (this.#web?.verifyDigest(digest)) return WEB;
    if (this.#origins !== undefined && origin !== undefined && origin !== "null") {
      if (this.#origins.verifyTokenDigest(digest, origin)) return { kind: "origin", origin };
    }
    return undefined;
  }
}

const MASTER: Credential = Object.freeze({ kind: "master" });
const WEB: Credential = Object.freeze({ kind: "web" });
