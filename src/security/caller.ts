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

/** What the HTTP pipeline decided about a request before handing it to the RPC adapter. */
export interface PipelineVerdict {
  /** The credential its bearer token proved. */
  readonly credential: Credential;
  /** Its Origin, normalised, when it passed the origin policy; undefined without one. */
  readonly origin: string | undefined;
}

/**
 * Context key for the pipeline's verdict, so the auth interceptor does not hash and compare the
 * token a second time. Undefined when a request reached the adapter some other way: the
 * interceptor then checks the token itself.
 */
export const pipelineVerdictKey = createContextKey<PipelineVerdict | undefined>(undefined, {
  description: "seed-daemon pipeline verdict",
});
