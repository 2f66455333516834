/**
 * The session cookie: AES-256-GCM under a key derived with HKDF-SHA256 from the site's session
 * secret. The secret itself never encrypts anything and never leaves this module's closure.
 *
 * Value: base64url (no padding) of `version(1) ‖ iv(12) ‖ ciphertext ‖ tag(16)`, the plaintext
 * being the JSON `{sid, principal, proof, exp}`. A value that does not decrypt (tampered, another
 * secret, another version) is no session, without saying why.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { decodeBase64url, encodeBase64url } from "./encoding.js";

/** Fewest bytes a session secret may have. */
export const MIN_SESSION_SECRET_BYTES = 32;

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Browsers keep cookies up to about 4 KiB; anything longer is not ours. */
const MAX_COOKIE_VALUE_CHARS = 4096;
const HKDF_SALT = "seed-daemon/web";
const HKDF_INFO = "session cookie v1 aes-256-gcm";
const AAD = Buffer.from("seed-daemon/web session v1", "utf8");

/** What the cookie carries. */
export interface CookiePayload {
  /** Session id in the {@link SessionStore}. */
  readonly sid: string;
  readonly principal: string;
  /** The `X-Seed-Principal-Proof` value made at login. */
  readonly proof: string;
  /** Unix milliseconds. */
  readonly exp: number;
}

/** Seals and opens cookie values under one derived key. */
export interface CookieSealer {
  seal(payload: CookiePayload): string;
  open(value: string): CookiePayload | undefined;
}

/** The secret as bytes, or a TypeError that says what is wrong without showing any of it. */
export function secretBytes(secret: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof secret === "string") bytes = new Uint8Array(Buffer.from(secret, "utf8"));
  else if (secret instanceof Uint8Array) bytes = Uint8Array.from(secret);
  else throw new TypeError("sessionSecret must be a string or a Uint8Array");
  if (bytes.length < MIN_SESSION_SECRET_BYTES) {
    bytes.fill(0);
    throw new TypeError(
      `sessionSecret must be at least ${MIN_SESSION_SECRET_BYTES} bytes; generate one with ` +
        "`openssl rand -base64 32` and pass it in, e.g. from SEED_WEB_SESSION_SECRET",
    );
  }
  return bytes;
}

/** A {@link CookieSealer} whose AES key is HKDF-SHA256 of `secret`; the secret is wiped after. */
export function createCookieSealer(secret: Uint8Array): CookieSealer {
  const key = Buffer.from(hkdfSync("sha256", secret, HKDF_SALT, HKDF_INFO, 32));
  secret.fill(0);
  return {
    seal(payload) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(AAD);
      const plain = Buffer.from(
        JSON.stringify({
          sid: payload.sid,
          principal: payload.principal,
          proof: payload.proof,
          exp: payload.exp,
        }),
        "utf8",
      );
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return encodeBase64url(
        Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]) as Uint8Array,
      );
    },
    open(value) {
      if (value.length > MAX_COOKIE_VALUE_CHARS) return undefined;
      const bytes = decodeBase64url(value, MAX_COOKIE_VALUE_CHARS);
      if (bytes === undefined || bytes.length < 1 + IV_BYTES + TAG_BYTES + 2) return undefined;
      if (bytes[0] !== VERSION) return undefined;
      const iv = bytes.subarray(1, 1 + IV_BYTES);
      const tag = bytes.subarray(bytes.length - TAG_BYTES);
      const body = bytes.subarray(1 + IV_BYTES, bytes.length - TAG_BYTES);
      let plain: string;
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(AAD);
        decipher.setAuthTag(tag);
        plain = Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
      } catch {
        return undefined;
      }
      let v: unknown;
      try {
        v = JSON.parse(plain);
      } catch {
        return undefined;
      }
      if (typeof v !== "object" || v === null) return undefined;
      const { sid, principal, proof, exp } = v as Record<string, unknown>;
      if (
        typeof sid !== "string" ||
        typeof principal !== "string" ||
        typeof proof !== "string" ||
        typeof exp !== "number" ||
        !Number.isSafeInteger(exp)
      ) {
        return undefined;
      }
      return { sid, principal, proof, exp };
    },
  };
}

/** Attributes of the session cookie. */
export interface CookieAttributes {
  readonly name: string;
  readonly secure: boolean;
}

/** `Set-Cookie` for a live session that lasts `maxAgeSeconds`. */
export function setCookieHeader(
  attrs: CookieAttributes,
  value: string,
  maxAgeSeconds: number,
): string {
  const secure = attrs.secure ? "; Secure" : "";
  return `${attrs.name}=${value}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Path=/; HttpOnly; SameSite=Lax${secure}`;
}

/** `Set-Cookie` that removes the session cookie. */
export function clearCookieHeader(attrs: CookieAttributes): string {
  const secure = attrs.secure ? "; Secure" : "";
  return `${attrs.name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax${secure}`;
}

/** Most same-named cookies looked at in one `Cookie` header (another site may plant some). */
const MAX_CANDIDATES = 4;

/** The values of every cookie called `name` in a `Cookie` header, first ones first. */
export function cookieValues(header: string | null, name: string): string[] {
  if (header === null || header.length > 16384) return [];
  const out: string[] = [];
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    if (v !== "") out.push(v);
    if (out.length >= MAX_CANDIDATES) break;
  }
  return out;
}
