/**
 * Small strict codecs the web library needs on the server side: base64url without padding,
 * `z6Mk…` principals and site origins. Kept here so `seed-daemon/web` imports nothing of the
 * daemon but `wire.ts`.
 *
 * @module
 */
import { base58btc } from "multiformats/bases/base58";

const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64url without padding: only the alphabet, a possible length and canonical tail bits,
 * so one byte string has exactly one accepted spelling.
 *
 * @returns the bytes, or undefined for anything else.
 */
export function decodeBase64url(s: unknown, maxChars = 1 << 20): Uint8Array | undefined {
  if (typeof s !== "string" || s.length > maxChars || !BASE64URL_RE.test(s) || s.length % 4 === 1)
    return undefined;
  const buf = Buffer.from(s, "base64url");
  if (buf.toString("base64url") !== s) return undefined;
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** base64url without padding. */
export function encodeBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** Unsigned-varint multicodec `ed25519-pub` (0xed), the prefix of a binary principal. */
const ED25519_PUB = [0xed, 0x01] as const;
/** 34 bytes are 47 base58 characters plus the `z`; the bound keeps base58 decoding cheap. */
const MAX_PRINCIPAL_LENGTH = 64;

/**
 * Parses a `z6Mk…` principal (base58btc multibase of `0xed 0x01 ‖ key`) in its canonical
 * spelling.
 *
 * @returns the 32-byte Ed25519 public key, or undefined for anything else.
 */
export function parsePrincipal(s: unknown): Uint8Array | undefined {
  if (typeof s !== "string" || s.length === 0 || s.length > MAX_PRINCIPAL_LENGTH) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = base58btc.decode(s);
  } catch {
    return undefined;
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB[0] || bytes[1] !== ED25519_PUB[1]) {
    return undefined;
  }
  const key = bytes.slice(2);
  return formatPrincipal(key) === s ? key : undefined;
}

/** The `z6Mk…` principal of a 32-byte Ed25519 public key. */
export function formatPrincipal(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new RangeError("an Ed25519 public key is 32 bytes");
  const bytes = new Uint8Array(34);
  bytes.set(ED25519_PUB, 0);
  bytes.set(publicKey, 2);
  return base58btc.encode(bytes);
}

/** Hosts whose plain-http origin is a secure context in browsers. */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** A site origin, normalised, and whether it is served over TLS. */
export interface SiteOrigin {
  /** `scheme://host[:port]`: lower-case scheme and host, no default port, no path. */
  readonly origin: string;
  /** False only for plain-http loopback origins. */
  readonly secure: boolean;
}

/**
 * Normalises a site's public origin (`https://site.example`, `http://127.0.0.1:8080`): lower-case
 * scheme and host, IDN hosts as punycode, no default port, no trailing slash.
 *
 * @throws {TypeError} for anything but an http(s) origin without user info, path, query or
 *   fragment, and for plain http on a host other than localhost, 127.0.0.1 or [::1] (browsers
 *   neither keep a `Secure` cookie nor offer WebCrypto there).
 */
export function parseSiteOrigin(input: string): SiteOrigin {
  if (typeof input !== "string" || input.length === 0 || input.length > 2048) {
    throw new TypeError("origin must be a non-empty string such as https://site.example");
  }
  const shown = JSON.stringify(input.length > 200 ? `${input.slice(0, 200)}…` : input);
  let url: URL | undefined;
  try {
    url = /[\s\\]/.test(input) ? undefined : new URL(input);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw new TypeError(`origin ${shown} is not an http(s) origin such as https://site.example`);
  }
  if (
    url.username !== "" ||
    url.password !== "" ||
    url.pathname !== "/" ||
    input.includes("?") ||
    input.includes("#")
  ) {
    throw new TypeError(
      `origin ${shown} must be scheme://host[:port] only, without user info, path, query or fragment`,
    );
  }
  const secure = url.protocol === "https:";
  if (!secure && !LOOPBACK_HOSTS.has(url.hostname)) {
    throw new TypeError(
      `origin ${shown}: plain http is only allowed for localhost, 127.0.0.1 and [::1]; serve the site over https`,
    );
  }
  return { origin: url.origin, secure };
}
