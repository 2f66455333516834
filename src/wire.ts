/**
 * The daemon's outside contract that is not in the protos: header names, environment
 * variables, file names, default addresses, the `daemon.json` schema and the login-proof and
 * capabilities header encodings. The daemon (`src/server/`, `src/security/`) and the caller
 * libraries (`seed-daemon/client`, `seed-daemon/web`) both import it, so the two sides cannot
 * drift; it imports nothing of the daemon.
 *
 * @module
 */

import * as dagCbor from "@ipld/dag-cbor";

// --- Headers -------------------------------------------------------------------------------

/** The browser user a web server forwards (`z6Mk…`); only with {@link PRINCIPAL_PROOF_HEADER}. */
export const PRINCIPAL_HEADER = "x-seed-principal";
/** The browser user's login proof, which the daemon verifies itself. */
export const PRINCIPAL_PROOF_HEADER = "x-seed-principal-proof";
/** Signed capability blobs the browser user holds ({@link encodeCapabilitiesHeader}). */
export const CAPABILITIES_HEADER = "x-seed-capabilities";

// --- Environment and files -----------------------------------------------------------------

/** The full token, instead of the token file. */
export const AUTH_TOKEN_ENV = "SEED_DAEMON_AUTH_TOKEN";
/** Path of the full token file (default `<data-dir>/auth.token`). */
export const AUTH_TOKEN_PATH_ENV = "SEED_DAEMON_AUTH_TOKEN_PATH";
/** The web token (read RPCs only), instead of its file. */
export const WEB_TOKEN_ENV = "SEED_DAEMON_WEB_TOKEN";
/** Path of the web token file. */
export const WEB_TOKEN_PATH_ENV = "SEED_DAEMON_WEB_TOKEN_PATH";
/** The full token file in the data dir. */
export const TOKEN_FILE_NAME = "auth.token";
/** Where a running daemon says how to reach it, in the data dir. */
export const DAEMON_FILE_NAME = "daemon.json";

/** Default Connect / gRPC-web (HTTP/1.1 and h2c) listener. */
export const DEFAULT_HTTP_ADDR = "127.0.0.1:55001";
/** Default gRPC (h2c) listener. */
export const DEFAULT_GRPC_ADDR = "127.0.0.1:55002";

/** Contents of `daemon.json`: how clients find a running daemon. */
export interface DaemonFile {
  pid: number;
  httpAddr: string;
  grpcAddr: string;
  /** RFC 3339. */
  startTime: string;
  version: string;
}

/** Parses `daemon.json` text; undefined unless it has exactly the expected field types. */
export function parseDaemonFile(text: string): DaemonFile | undefined {
  let v: Partial<DaemonFile>;
  try {
    v = JSON.parse(text) as Partial<DaemonFile>;
  } catch {
    return undefined;
  }
  if (
    typeof v === "object" &&
    v !== null &&
    typeof v.pid === "number" &&
    typeof v.httpAddr === "string" &&
    typeof v.grpcAddr === "string" &&
    typeof v.startTime === "string" &&
    typeof v.version === "string"
  ) {
    return {
      pid: v.pid,
      httpAddr: v.httpAddr,
      grpcAddr: v.grpcAddr,
      startTime: v.startTime,
      version: v.version,
    };
  }
  return undefined;
}

// --- Login proof ---------------------------------------------------------------------------

/** Challenge bytes: an 8-byte big-endian Unix-ms issue time, then 24 random bytes. */
export const CHALLENGE_LENGTH = 32;
/** Nonce bytes: random, issued with the challenge and used once. */
export const NONCE_LENGTH = 16;
/** Ed25519 signature bytes. */
export const SIGNATURE_LENGTH = 64;
/** Oldest issue time a proof may carry, relative to now. */
export const PROOF_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000;
/** Furthest an issue time may be ahead of the daemon's clock. */
export const PROOF_MAX_FUTURE_MS = 5 * 60 * 1000;

/** The signed message of a login proof: `challenge ‖ UTF-8(origin) ‖ nonce`. */
export function principalProofMessage(
  challenge: Uint8Array,
  origin: string,
  nonce: Uint8Array,
): Uint8Array {
  const o = new TextEncoder().encode(origin);
  const out = new Uint8Array(challenge.length + o.length + nonce.length);
  out.set(challenge, 0);
  out.set(o, challenge.length);
  out.set(nonce, challenge.length + o.length);
  return out;
}

/**
 * The {@link PRINCIPAL_PROOF_HEADER} value: base64url (no padding) of canonical DAG-CBOR
 * `{challenge, origin, nonce, sig}`. Does not sign: `sig` is the principal's signature over
 * {@link principalProofMessage}.
 */
export function encodePrincipalProof(proof: {
  readonly challenge: Uint8Array;
  readonly origin: string;
  readonly nonce: Uint8Array;
  readonly sig: Uint8Array;
}): string {
  const bytes = dagCbor.encode({
    challenge: proof.challenge,
    origin: proof.origin,
    nonce: proof.nonce,
    sig: proof.sig,
  });
  return Buffer.from(bytes).toString("base64url");
}

// --- Forwarded capabilities ----------------------------------------------------------------

/** Most capability blobs in one {@link CAPABILITIES_HEADER}. */
export const MAX_FORWARDED_CAPABILITIES = 32;
/** Largest capability blob in the header, in bytes. */
export const MAX_FORWARDED_CAPABILITY_BYTES = 2048;
/** Longest header, in characters: 12 KiB once decoded. */
export const MAX_CAPABILITIES_HEADER_LENGTH = 16384;

/** The {@link CAPABILITIES_HEADER} value: base64url of a DAG-CBOR array of blob bytes. */
export function encodeCapabilitiesHeader(blobs: readonly Uint8Array[]): string {
  return Buffer.from(dagCbor.encode([...blobs])).toString("base64url");
}
