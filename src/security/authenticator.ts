import type { Credential } from "./caller.js";
import type { MasterToken } from "./token-store.js";

/** A source of origin-bound tokens (the paired-origin store). */
export interface OriginTokenVerifier {
  /** True when `token` is the token paired with exactly `origin`. */
  verifyToken(token: string, origin: string | undefined): boolean;
}

/**
 * Decides which credential a bearer token is. The master token works from any request that
 * passed the origin policy; an origin-bound token only from its own origin.
 */
export class Authenticator {
  readonly #master: MasterToken;
  readonly #origins: OriginTokenVerifier | undefined;

  constructor(master: MasterToken, origins?: OriginTokenVerifier) {
    this.#master = master;
    this.#origins = origins;
  }

  /**
   * @param token the bearer token, or undefined when none was sent
   * @param origin the request's normalised Origin, or undefined
   */
  authenticate(token: string | undefined, origin: string | undefined): Credential | undefined {
    if (token === undefined) return undefined;
    if (this.#master.verify(token)) return MASTER;
    if (this.#origins !== undefined && origin !== undefined && origin !== "null") {
      if (this.#origins.verifyToken(token, origin)) return { kind: "origin", origin };
    }
    return undefined;
  }
}

const MASTER: Credential = Object.freeze({ kind: "master" });
