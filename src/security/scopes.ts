/**
 * RPCs the web token may call: what a web server needs to render documents for its visitors.
 * No key RPC (not even ListKeys), no signing, pairing, blob or write RPC, so a compromised web
 * server can neither sign with nor export the site's keys.
 */
export const WEB_TOKEN_PROCEDURES: ReadonlySet<string> = new Set([
  "/com.seed.daemon.v1alpha.Daemon/GetInfo",
  "/com.seed.documents.v3alpha.Documents/GetDocument",
  "/com.seed.documents.v3alpha.Documents/ListDocuments",
  "/com.seed.documents.v3alpha.Documents/ListDocumentChanges",
  "/com.seed.documents.v3alpha.Documents/WatchDocuments",
  "/com.seed.documents.v3alpha.AccessControl/GetCapability",
  "/com.seed.documents.v3alpha.AccessControl/ListCapabilities",
  "/com.seed.documents.v3alpha.AccessControl/ListCapabilitiesForDelegate",
]);

/**
 * RPCs an origin-bound (paired) token may call: the reads above plus `ListKeys`, which a paired
 * page needs to show whose documents it reads; nothing that signs, exports, changes keys or
 * manages pairings. Full procedure paths, matched exactly.
 */
export const ORIGIN_TOKEN_PROCEDURES: ReadonlySet<string> = new Set([
  ...WEB_TOKEN_PROCEDURES,
  "/com.seed.daemon.v1alpha.Daemon/ListKeys",
]);

/** Headers through which a trusted web server forwards the browser user's identity. */
export { CAPABILITIES_HEADER, PRINCIPAL_HEADER, PRINCIPAL_PROOF_HEADER } from "../wire.js";
