import { createContextKey } from "@connectrpc/connect";
import type { VerifiedCapability } from "./read-access.js";

/** How a request authenticated. */
export type Credential =
  | { readonly kind: "master" }
  | { readonly kind: "web" }
  | { readonly kind: "origin"; readonly origin: string };

/** Who is calling: put in the Connect context by the interceptor, read by services. */
export interface Caller {
  /** Remote socket address. */
  readonly remoteAddr: string;
  readonly credential: Credential;
  /** Browser origin of the request, normalised, if any. */
  readonly origin: string | undefined;
  /**
   * Principal forwarded by a web server in front of the daemon, only once its login proof
   * verified; undefined otherwise (a full-token caller is then the local user).
   */
  readonly principal: string | undefined;
  /** Forwarded capabilities whose blobs and signatures verified. */
  readonly capabilities: readonly VerifiedCapability[];
}

/** Context key for the caller. Undefined until the auth interceptor ran. */
export const callerKey = createContextKey<Caller | undefined>(undefined, {
  description: "seed-daemon caller",
});

/** Context key for the peer address, set from the socket before interceptors run. */
export const remoteAddrKey = createContextKey<string>("", {
  description: "seed-daemon remote address",
});
