/**
 * Login for a web site in front of the daemon: the browser signs a challenge with its own Ed25519
 * key, the site checks the signature, keeps the login proof in an encrypted session cookie and
 * forwards it to the daemon (`X-Seed-Principal` + `X-Seed-Principal-Proof`), which checks it again.
 *
 * Fetch API only (`Request` → `Response`), so the handlers fit React Router / Remix actions, Hono,
 * Next route handlers and, through {@link toNodeHandler}, plain `node:http`.
 *
 * @module
 */
import { createPublicKey, randomBytes, verify as verifySignature } from "node:crypto";
import * as dagCbor from "@ipld/dag-cbor";
import {
  CHALLENGE_LENGTH,
  encodeCapabilitiesHeader,
  encodePrincipalProof,
  MAX_CAPABILITIES_HEADER_LENGTH,
  MAX_FORWARDED_CAPABILITIES,
  MAX_FORWARDED_CAPABILITY_BYTES,
  NONCE_LENGTH,
  PROOF_MAX_AGE_MS,
  PROOF_MAX_FUTURE_MS,
  principalProofMessage,
  SIGNATURE_LENGTH,
} from "../wire.js";
import {
  clearCookieHeader,
  cookieValues,
  createCookieSealer,
  secretBytes,
  setCookieHeader,
} from "./cookie.js";
import { decodeBase64url, encodeBase64url, parsePrincipal, parseSiteOrigin } from "./encoding.js";
import { MemorySessionStore, type SessionStore } from "./session-store.js";

/** Paths the handlers answer. */
export const AUTH_PATHS = {
  challenge: "/hm/auth/challenge",
  login: "/hm/auth/login",
  logout: "/hm/auth/logout",
  capabilities: "/hm/auth/capabilities",
} as const;

/** How long a challenge may be answered, in milliseconds. */
export const CHALLENGE_TTL_MS = 2 * 60 * 1000;
/** Most unanswered challenges kept; beyond it the oldest is forgotten. */
export const MAX_PENDING_CHALLENGES = 10_000;
/** Largest request body the handlers read, in bytes. */
export const MAX_AUTH_BODY_BYTES = 64 * 1024;
/**
 * How long a session lasts: as long as the daemon accepts its login proof (30 days after the
 * challenge was issued), less the 5 minutes the daemon allows for clocks that disagree.
 */
export const SESSION_TTL_MS = PROOF_MAX_AGE_MS - PROOF_MAX_FUTURE_MS;
/** Session cookie name on an https site (`__Host-`: no Domain, Path=/, Secure, set by this host). */
export const SECURE_COOKIE_NAME = "__Host-seed_session";
/** Session cookie name on a plain-http loopback site, where `__Host-` is not possible. */
export const LOCAL_COOKIE_NAME = "seed_session";

/** Stable `code` of every refusal, in the JSON body `{code, message}`. */
export type AuthErrorCode =
  | "bad_request"
  | "bad_origin"
  | "body_too_large"
  | "method_not_allowed"
  | "malformed_key"
  | "bad_signature"
  | "unknown_nonce"
  | "expired_challenge"
  | "not_logged_in"
  | "malformed_capability"
  | "capability_too_large"
  | "too_many_capabilities";

const STATUS: Readonly<Record<AuthErrorCode, number>> = {
  bad_request: 400,
  bad_origin: 403,
  body_too_large: 413,
  method_not_allowed: 405,
  malformed_key: 400,
  bad_signature: 401,
  unknown_nonce: 401,
  expired_challenge: 401,
  not_logged_in: 401,
  malformed_capability: 400,
  capability_too_large: 400,
  too_many_capabilities: 400,
};

const MESSAGE: Readonly<Record<AuthErrorCode, string>> = {
  bad_request: "malformed request",
  bad_origin: "cross-origin request refused",
  body_too_large: "request body too large",
  method_not_allowed: "use POST",
  malformed_key: "publicKeyMultikey is not an Ed25519 principal (z6Mk…)",
  bad_signature: "the signature does not verify",
  unknown_nonce: "no such challenge: request a new one",
  expired_challenge: "the challenge expired: request a new one",
  not_logged_in: "not logged in",
  malformed_capability: "a capability is not a base64url Capability blob",
  capability_too_large: "a capability blob is too large",
  too_many_capabilities: "too many capabilities for one session",
};

/** A logged-in browser user, as the site's own code sees it. Holds nothing secret of the site. */
export interface WebSession {
  /** Session id (the key in the {@link SessionStore}). */
  readonly id: string;
  /** The browser key, `z6Mk…`. */
  readonly principal: string;
  /** The login proof, exactly the daemon's `X-Seed-Principal-Proof` value. */
  readonly proof: string;
  /** Capability blobs the user handed the site, each the blob's encoded bytes (copies). */
  readonly capabilities: Uint8Array[];
}

/** Options of {@link createAuthHandlers}. */
export interface AuthHandlersOptions {
  /**
   * At least 32 bytes of secret (a string is taken as UTF-8), e.g. from
   * `SEED_WEB_SESSION_SECRET`. Only a key derived from it with HKDF-SHA256 is kept.
   */
  readonly sessionSecret: string | Uint8Array;
  /**
   * The site's public origin (`https://site.example`, `http://127.0.0.1:8080`); login proofs are
   * made for exactly this origin, which must be one of the daemon's `--cors-origin` entries.
   */
  readonly origin: string;
  /** Where sessions live; default a {@link MemorySessionStore} using `now`. */
  readonly sessionStore?: SessionStore;
  /** Most capabilities one session holds; default and maximum 32 (the daemon's limit). */
  readonly maxCapabilities?: number;
  /** Largest capability blob in bytes; default and maximum 2048 (the daemon's limit). */
  readonly maxCapabilityBytes?: number;
  /** Clock, Unix milliseconds; default `Date.now`. */
  readonly now?: () => number;
}

/** What {@link createAuthHandlers} returns. Every handler resolves (never rejects) on bad input. */
export interface AuthHandlers {
  /** The normalised site origin. */
  readonly origin: string;
  /** The session cookie's name. */
  readonly cookieName: string;
  /**
   * Routes a request by path: the answer for `/hm/auth/{challenge,login,logout,capabilities}`
   * (405 for a method other than POST), undefined for every other path.
   */
  handle(req: Request): Promise<Response | undefined>;
  /** `POST /hm/auth/challenge` → 200 `{challenge, nonce, expiresAt}`. */
  challenge(req: Request): Promise<Response>;
  /**
   * `POST /hm/auth/login` `{publicKeyMultikey, signature, nonce, capabilities?}` → 200
   * `{principal}` and the session cookie.
   */
  login(req: Request): Promise<Response>;
  /** `POST /hm/auth/logout` → 200 `{}`; ends the session server-side and clears the cookie. */
  logout(req: Request): Promise<Response>;
  /** `POST /hm/auth/capabilities` `{capabilities}` → 200 `{count}`; adds to the session. */
  capabilities(req: Request): Promise<Response>;
  /** The session of the request's cookie, or undefined when there is none or it is not valid. */
  session(req: Request): Promise<WebSession | undefined>;
}

class Refusal {
  constructor(readonly code: AuthErrorCode) {}
}

function refuse(code: AuthErrorCode): never {
  throw new Refusal(code);
}

const JSON_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json; charset=utf-8",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};

function json(status: number, body: unknown, setCookie?: string): Response {
  const headers = new Headers(JSON_HEADERS);
  if (setCookie !== undefined) headers.append("set-cookie", setCookie);
  return new Response(JSON.stringify(body), { status, headers });
}

function refusalResponse(code: AuthErrorCode): Response {
  const res = json(STATUS[code], { code, message: MESSAGE[code] });
  if (code === "method_not_allowed") res.headers.set("allow", "POST");
  return res;
}

/** Reads at most `limit` bytes of body: Content-Length first, then the bytes actually sent. */
async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d{1,15}$/.test(declared.trim())) refuse("bad_request");
    if (Number(declared.trim()) > limit) refuse("body_too_large");
  }
  if (req.body === null) return new Uint8Array(0);
  let reader: ReadableStreamDefaultReader<Uint8Array>;
  try {
    reader = req.body.getReader();
  } catch {
    refuse("bad_request");
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch {
      refuse("bad_request");
    }
    if (chunk.done) break;
    total += chunk.value.byteLength;
    if (total > limit) {
      reader.cancel().catch(() => {});
      refuse("body_too_large");
    }
    chunks.push(chunk.value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** The JSON object of a request body (`application/json`, UTF-8, within the size bound). */
async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") refuse("bad_request");
  const bytes = await readBody(req, MAX_AUTH_BODY_BYTES);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    refuse("bad_request");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) refuse("bad_request");
  return value as Record<string, unknown>;
}

interface PendingChallenge {
  readonly challenge: Uint8Array;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** Unanswered challenges by nonce: single use, bounded, expired ones dropped as time passes. */
class ChallengeBook {
  readonly #pending = new Map<string, PendingChallenge>();

  issue(now: number): { nonce: string; pending: PendingChallenge } {
    this.#prune(now);
    const challenge = new Uint8Array(CHALLENGE_LENGTH);
    new DataView(challenge.buffer).setBigUint64(0, BigInt(now));
    challenge.set(randomBytes(CHALLENGE_LENGTH - 8), 8);
    const nonce = encodeBase64url(randomBytes(NONCE_LENGTH));
    const pending = { challenge, issuedAt: now, expiresAt: now + CHALLENGE_TTL_MS };
    this.#pending.set(nonce, pending);
    while (this.#pending.size > MAX_PENDING_CHALLENGES) {
      const oldest = this.#pending.keys().next();
      if (oldest.done) break;
      this.#pending.delete(oldest.value);
    }
    return { nonce, pending };
  }

  /** Removes and returns the challenge of `nonce`, expired or not. */
  take(nonce: string, now: number): PendingChallenge | undefined {
    const p = this.#pending.get(nonce);
    this.#pending.delete(nonce);
    this.#prune(now);
    return p;
  }

  /** Every challenge lives equally long, so insertion order is expiry order. */
  #prune(now: number): void {
    for (const [nonce, p] of this.#pending) {
      if (p.expiresAt > now) break;
      this.#pending.delete(nonce);
    }
  }
}

function checkLimit(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return max;
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max} (the daemon's limit)`);
  }
  return value;
}

function isCapabilityBlob(bytes: Uint8Array): boolean {
  let v: unknown;
  try {
    v = dagCbor.decode(bytes);
  } catch {
    return false;
  }
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    (v as Record<string, unknown>).type === "Capability"
  );
}

/**
 * Creates the login endpoints of a site and the session lookup its pages use.
 *
 * @throws {TypeError} when `sessionSecret` is shorter than 32 bytes or `origin` is not an http(s)
 *   origin (plain http only on loopback); {@link RangeError} for limits beyond the daemon's.
 */
export function createAuthHandlers(options: AuthHandlersOptions): AuthHandlers {
  const sealer = createCookieSealer(secretBytes(options.sessionSecret));
  const site = parseSiteOrigin(options.origin);
  const origin = site.origin;
  const now = options.now ?? Date.now;
  const store: SessionStore = options.sessionStore ?? new MemorySessionStore({ now });
  const maxCapabilities = checkLimit(
    "maxCapabilities",
    options.maxCapabilities,
    MAX_FORWARDED_CAPABILITIES,
  );
  const maxCapabilityBytes = checkLimit(
    "maxCapabilityBytes",
    options.maxCapabilityBytes,
    MAX_FORWARDED_CAPABILITY_BYTES,
  );
  const cookie = {
    name: site.secure ? SECURE_COOKIE_NAME : LOCAL_COOKIE_NAME,
    secure: site.secure,
  };
  const challenges = new ChallengeBook();
  const maxCapabilityChars = Math.ceil((maxCapabilityBytes * 4) / 3);

  /** POST only, and no cross-site caller: CSRF protection for the cookie. */
  function checkRequest(req: Request): void {
    if (req.method !== "POST") refuse("method_not_allowed");
    const from = req.headers.get("origin");
    if (from !== null && from !== origin) refuse("bad_origin");
    const fetchSite = req.headers.get("sec-fetch-site");
    if (fetchSite === "cross-site" || fetchSite === "same-site") refuse("bad_origin");
  }

  /** Decodes and checks a JSON array of base64url capability blobs. */
  function parseCapabilities(v: unknown): Uint8Array[] {
    if (!Array.isArray(v)) refuse("bad_request");
    if (v.length > maxCapabilities) refuse("too_many_capabilities");
    const out: Uint8Array[] = [];
    for (const item of v) {
      if (typeof item !== "string") refuse("bad_request");
      if (item.length > maxCapabilityChars) refuse("capability_too_large");
      const bytes = decodeBase64url(item, maxCapabilityChars);
      if (bytes === undefined || bytes.length === 0) refuse("malformed_capability");
      if (bytes.length > maxCapabilityBytes) refuse("capability_too_large");
      if (!isCapabilityBlob(bytes)) refuse("malformed_capability");
      out.push(Uint8Array.from(bytes));
    }
    return out;
  }

  /** `existing` plus `added`, each blob once, within the count and header-size bounds. */
  function merge(existing: readonly Uint8Array[], added: readonly Uint8Array[]): Uint8Array[] {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    for (const b of [...existing, ...added]) {
      const k = encodeBase64url(b);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(b);
    }
    if (out.length > maxCapabilities) refuse("too_many_capabilities");
    if (out.length > 0 && encodeCapabilitiesHeader(out).length > MAX_CAPABILITIES_HEADER_LENGTH) {
      refuse("too_many_capabilities");
    }
    return out;
  }

  async function session(req: Request): Promise<WebSession | undefined> {
    const t = now();
    for (const value of cookieValues(req.headers.get("cookie"), cookie.name)) {
      const payload = sealer.open(value);
      if (payload === undefined || payload.exp <= t) continue;
      const record = await store.get(payload.sid);
      if (record === undefined || record.principal !== payload.principal) continue;
      if (record.expiresAt <= t) {
        await store.delete(payload.sid);
        continue;
      }
      return {
        id: payload.sid,
        principal: payload.principal,
        proof: payload.proof,
        capabilities: record.capabilities.map((c) => Uint8Array.from(c)),
      };
    }
    return undefined;
  }

  async function guarded(fn: () => Promise<Response>): Promise<Response> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Refusal) return refusalResponse(err.code);
      throw err;
    }
  }

  function challenge(req: Request): Promise<Response> {
    return guarded(async () => {
      checkRequest(req);
      const { nonce, pending } = challenges.issue(now());
      return json(200, {
        challenge: encodeBase64url(pending.challenge),
        nonce,
        expiresAt: new Date(pending.expiresAt).toISOString(),
      });
    });
  }

  function login(req: Request): Promise<Response> {
    return guarded(async () => {
      checkRequest(req);
      const body = await readJsonObject(req);
      const nonce = decodeBase64url(body.nonce, 64);
      if (nonce === undefined || nonce.length !== NONCE_LENGTH) refuse("bad_request");
      // Consumed on the first attempt, whatever comes next: a nonce is never tried twice.
      const t = now();
      const pending = challenges.take(body.nonce as string, t);
      if (pending === undefined) refuse("unknown_nonce");
      if (pending.expiresAt <= t) refuse("expired_challenge");
      const publicKey = parsePrincipal(body.publicKeyMultikey);
      if (publicKey === undefined) refuse("malformed_key");
      const sig = decodeBase64url(body.signature, 128);
      if (sig === undefined || sig.length !== SIGNATURE_LENGTH) refuse("bad_request");
      const added = body.capabilities === undefined ? [] : parseCapabilities(body.capabilities);
      const capabilities = merge([], added);

      const message = principalProofMessage(pending.challenge, origin, nonce);
      let ok = false;
      try {
        const key = createPublicKey({
          key: { kty: "OKP", crv: "Ed25519", x: encodeBase64url(publicKey) },
          format: "jwk",
        });
        ok = verifySignature(null, message, key, sig);
      } catch {
        ok = false;
      }
      if (!ok) refuse("bad_signature");

      const principal = body.publicKeyMultikey as string;
      const proof = encodePrincipalProof({ challenge: pending.challenge, origin, nonce, sig });
      // A new login replaces the session this browser had.
      const previous = await session(req);
      if (previous !== undefined) await store.delete(previous.id);
      const sid = encodeBase64url(randomBytes(32));
      const exp = pending.issuedAt + SESSION_TTL_MS;
      await store.set(sid, { principal, createdAt: t, expiresAt: exp, capabilities });
      const value = sealer.seal({ sid, principal, proof, exp });
      return json(200, { principal }, setCookieHeader(cookie, value, (exp - t) / 1000));
    });
  }

  function logout(req: Request): Promise<Response> {
    return guarded(async () => {
      checkRequest(req);
      const current = await session(req);
      if (current !== undefined) await store.delete(current.id);
      return json(200, {}, clearCookieHeader(cookie));
    });
  }

  function capabilities(req: Request): Promise<Response> {
    return guarded(async () => {
      checkRequest(req);
      const current = await session(req);
      if (current === undefined) refuse("not_logged_in");
      const body = await readJsonObject(req);
      const added = parseCapabilities(body.capabilities);
      const record = await store.get(current.id);
      if (record === undefined) refuse("not_logged_in");
      const merged = merge(record.capabilities, added);
      await store.set(current.id, { ...record, capabilities: merged });
      return json(200, { count: merged.length });
    });
  }

  async function handle(req: Request): Promise<Response | undefined> {
    let path: string;
    try {
      path = new URL(req.url).pathname;
    } catch {
      return undefined;
    }
    switch (path) {
      case AUTH_PATHS.challenge:
        return challenge(req);
      case AUTH_PATHS.login:
        return login(req);
      case AUTH_PATHS.logout:
        return logout(req);
      case AUTH_PATHS.capabilities:
        return capabilities(req);
      default:
        return undefined;
    }
  }

  return {
    origin,
    cookieName: cookie.name,
    handle,
    challenge,
    login,
    logout,
    capabilities,
    session,
  };
}
