import type { Credential } from "./caller.js";
import type { MasterToken } from "./token-store.js";

/**
 * A token check: the full token (a running daemon's `FullToken`, whose token may be
 * rotated, so each call checks the current one) or a fixed {@link MasterToken}.
 */
export interface TokenVerifier {
  /** Constant-time: true when `candidate` is the token. */
  verify(candidate: string): boolean;
}

/** A source of origin-bound tokens (the paired-origin store). */
export interface OriginTokenVerifier {
  /** True when `token` is the token paired with exactly `origin`. */
  verifyToken(token: string, origin: string | undefined): boolean;
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
    if (this.#master.verify(token)) return MASTER;
    if (this.#web?.verify(token)) return WEB;
    if (this.#origins !== undefined && origin !== undefined && origin !== "null") {
      if (this.#origins.verifyToken(token, origin)) return { kind: "origin", origin };
    }
    return undefined;
  }
}

const MASTER: Credential = Object.freeze({ kind: "master" });
const WEB: Credential = Object.freeze({ kind: "web" });
