import { createContextKey } from "@connectrpc/connect";

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
  /** Principal forwarded by a trusted web server (phase 3), if any. */
  readonly principal: string | undefined;
}

/** Context key for the caller. Undefined until the auth interceptor ran. */
export const callerKey = createContextKey<Caller | undefined>(undefined, {
  description: "seed-daemon caller",
});

/** Context key for the peer address, set from the socket before interceptors run. */
export const remoteAddrKey = createContextKey<string>("", {
  description: "seed-daemon remote address",
});
