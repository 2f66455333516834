import type { HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { AuditLog } from "../audit/audit.js";
import type { Config } from "../config/config.js";
import { type Caller, callerKey } from "../security/caller.js";
import type { PairedOriginStore } from "../security/paired-origins.js";
import type { TokenRotation } from "../security/token-store.js";
import type { BlobStore } from "../store/blob-store.js";
import type { Keystore } from "../store/keystore.js";

/** What every service gets: shared, long-lived daemon state. */
export interface ServiceDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly startTime: Date;
  /** Browser origins the user paired, with their origin-bound token hashes. */
  readonly pairedOrigins: PairedOriginStore;
  /** The named signing keys in `seed.db`; the only holder of seeds. */
  readonly keystore: Keystore;
  /** Blobs, documents and capabilities in `seed.db`. */
  readonly store: BlobStore;
  /** Aborted when the daemon starts to shut down: long streams end cleanly then. */
  readonly stopping: AbortSignal;
  /**
   * Replaces the full token in its file (the token store's operation; the token itself stays
   * there). Throws `failed_precondition` when the token comes from the environment.
   */
  readonly rotateToken: () => TokenRotation;
}

/** The caller the auth interceptor put in the context (it always runs before handlers). */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (caller === undefined) throw new Error("auth interceptor did not run");
  return caller;
}
