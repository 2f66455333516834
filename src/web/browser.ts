/**
 * The browser half of a site's login (`seed-daemon/web/browser`): a plain ES module with no
 * dependencies, to be served as it is (`<script type="module">`) or bundled.
 *
 * The user's key is a WebCrypto Ed25519 key pair made on first use with a NON-extractable private
 * key, kept in IndexedDB for this site's origin: no script, the site's own included, can read the
 * private key; it can only sign with it. Its principal (`z6Mk…`) is the user's identity on this
 * site. Login signs the server's challenge for `location.origin` and leaves an httpOnly session
 * cookie, which the site's server turns into the daemon's forwarded-principal headers.
 *
 * Needs a secure context (https, or http on localhost) and a browser with WebCrypto Ed25519
 * (Chrome 137, Firefox 129, Safari 17).
 *
 * @module
 */

// Minimal typings of the browser globals used here, so the module compiles without the DOM lib
// (the rest of the package is Node code) and says plainly what it relies on.

interface IdbRequest<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
  onblocked: (() => void) | null;
}
interface IdbDatabase {
  readonly objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: "readonly" | "readwrite"): IdbTransaction;
  close(): void;
}
interface IdbTransaction {
  readonly error: unknown;
  objectStore(name: string): IdbObjectStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}
interface IdbObjectStore {
  get(key: string): IdbRequest<unknown>;
  add(value: unknown, key: string): IdbRequest<unknown>;
  put(value: unknown, key: string): IdbRequest<unknown>;
}
interface IdbFactory {
  open(name: string, version: number): IdbOpenRequest;
}

/** IndexedDB database holding the login key. */
export const KEY_DB_NAME = "seed-daemon-web";
/** Object store in {@link KEY_DB_NAME}. */
export const KEY_STORE_NAME = "keys";
/** Record key of the login key in {@link KEY_STORE_NAME}. */
export const KEY_RECORD_ID = "login";

const DB_VERSION = 1;
const PATHS = {
  challenge: "/hm/auth/challenge",
  login: "/hm/auth/login",
  logout: "/hm/auth/logout",
  capabilities: "/hm/auth/capabilities",
} as const;

/** A refusal from the site's server, or a failure on the way to it. */
export class SeedAuthError extends Error {
  /**
   * The server's stable code (`bad_signature`, `not_logged_in`, …), or `http_<status>` for an
   * answer without one, or `network_error`, `bad_response`, `unsupported`.
   */
  readonly code: string;
  /** HTTP status, 0 when there was no answer. */
  readonly status: number;

  constructor(code: string, message: string, status: number) {
    super(`${code}: ${message}`);
    this.name = "SeedAuthError";
    this.code = code;
    this.status = status;
  }
}

/** Options shared by the calls to the site's server. */
export interface SiteOptions {
  /** Prefix of the auth paths, e.g. `https://site.example`; default `""` (this page's origin). */
  readonly baseUrl?: string;
}

/** Options of {@link loginWithLocalKey}. */
export interface LoginOptions extends SiteOptions {
  /** Signed capability blobs (encoded bytes) to hand the session at login. */
  readonly capabilities?: readonly Uint8Array[];
}

interface StoredKey {
  readonly privateKey: CryptoKey;
  readonly principal: string;
}

function unsupported(what: string): never {
  throw new SeedAuthError("unsupported", `${what} is not available in this context`, 0);
}

function idb(): IdbFactory {
  const f = (globalThis as { indexedDB?: IdbFactory }).indexedDB;
  if (f === undefined) unsupported("IndexedDB");
  return f;
}

function pageOrigin(): string {
  const o = (globalThis as { location?: { origin?: unknown } }).location?.origin;
  if (typeof o !== "string" || o === "" || o === "null") unsupported("a page origin");
  return o;
}

function subtle(): SubtleCrypto {
  const s = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (s === undefined) unsupported("WebCrypto (a secure context)");
  return s;
}

// --- Encodings -----------------------------------------------------------------------------

const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** base58btc (Bitcoin alphabet) of `bytes`, without the multibase prefix. */
function base58(bytes: Uint8Array): string {
  const digits: number[] = [];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += (digits[i] as number) << 8;
      digits[i] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = Math.floor(carry / 58);
    }
  }
  let out = "";
  for (const byte of bytes) {
    if (byte !== 0) break;
    out += "1";
  }
  for (let i = digits.length - 1; i >= 0; i--) out += B58[digits[i] as number];
  return out;
}

/** The `z6Mk…` principal of a raw 32-byte Ed25519 public key. */
function principalOf(publicKey: Uint8Array): string {
  const bytes = new Uint8Array(34);
  bytes[0] = 0xed;
  bytes[1] = 0x01;
  bytes.set(publicKey, 2);
  return `z${base58(bytes)}`;
}

function toBase64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(s: unknown, length: number): Uint8Array {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s)) {
    throw new SeedAuthError("bad_response", "malformed challenge from the server", 0);
  }
  let bin = "";
  try {
    bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    bin = "";
  }
  if (bin.length !== length) {
    throw new SeedAuthError("bad_response", "malformed challenge from the server", 0);
  }
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// --- Key storage ---------------------------------------------------------------------------

function openDb(): Promise<IdbDatabase> {
  return new Promise((resolve, reject) => {
    const req = idb().open(KEY_DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(KEY_STORE_NAME)) {
        req.result.createObjectStore(KEY_STORE_NAME);
      }
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () =>
      reject(new SeedAuthError("unsupported", "the key database is blocked by another tab", 0));
  });
}

/** Runs one request in its own transaction and resolves once the transaction committed. */
async function inStore<T>(
  mode: "readonly" | "readwrite",
  op: (store: IdbObjectStore) => IdbRequest<T>,
): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(KEY_STORE_NAME, mode);
      const req = op(tx.objectStore(KEY_STORE_NAME));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? req.error);
      tx.onabort = () => reject(tx.error ?? req.error);
    });
  } finally {
    db.close();
  }
}

function asStoredKey(v: unknown): StoredKey | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const { privateKey, principal } = v as { privateKey?: unknown; principal?: unknown };
  if (typeof principal !== "string" || !principal.startsWith("z6Mk")) return undefined;
  const k = privateKey as CryptoKey | undefined;
  if (
    typeof k !== "object" ||
    k === null ||
    k.type !== "private" ||
    k.algorithm?.name !== "Ed25519" ||
    !k.usages.includes("sign")
  ) {
    return undefined;
  }
  return { privateKey: k, principal };
}

async function loadKey(): Promise<StoredKey | undefined> {
  return asStoredKey(await inStore("readonly", (s) => s.get(KEY_RECORD_ID)));
}

/** The stored key, made (and stored) first when there is none. */
async function loginKey(): Promise<StoredKey> {
  const existing = await loadKey();
  if (existing !== undefined) return existing;
  // An asymmetric algorithm gives a key pair; the typings do not know Ed25519 is one.
  const pair = (await subtle().generateKey({ name: "Ed25519" }, false, [
    "sign",
    "verify",
  ])) as unknown as { privateKey: CryptoKey; publicKey: CryptoKey };
  const raw = new Uint8Array(await subtle().exportKey("raw", pair.publicKey));
  const fresh: StoredKey = { privateKey: pair.privateKey, principal: principalOf(raw) };
  try {
    // `add`, not `put`: when another tab stored a key meanwhile, that one wins.
    await inStore("readwrite", (s) => s.add(fresh, KEY_RECORD_ID));
    return fresh;
  } catch (err) {
    const winner = await loadKey();
    if (winner !== undefined) return winner;
    // A record that is not a usable key: replace it.
    await inStore("readwrite", (s) => s.put(fresh, KEY_RECORD_ID)).catch(() => {
      throw err;
    });
    return fresh;
  }
}

// --- Calls to the site ---------------------------------------------------------------------

async function post(options: SiteOptions, path: string, body: unknown): Promise<unknown> {
  const base = (options.baseUrl ?? "").replace(/\/+$/, "");
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new SeedAuthError("network_error", `cannot reach ${base}${path}`, 0);
  }
  let value: unknown;
  try {
    value = await res.json();
  } catch {
    value = undefined;
  }
  if (!res.ok) {
    const v = (value ?? {}) as { code?: unknown; message?: unknown };
    const code = typeof v.code === "string" ? v.code : `http_${res.status}`;
    const message = typeof v.message === "string" ? v.message : res.statusText || "refused";
    throw new SeedAuthError(code, message, res.status);
  }
  return value;
}

/**
 * Logs in with this browser's own key, making it first when there is none: asks the site for a
 * challenge, signs `challenge ‖ UTF-8(location.origin) ‖ nonce` and posts the signature.
 *
 * @returns the principal (`z6Mk…`) now logged in; the session is an httpOnly cookie.
 * @throws {SeedAuthError} with the server's code when it refuses, or `unsupported` when the
 *   browser lacks IndexedDB or WebCrypto Ed25519.
 */
export async function loginWithLocalKey(
  options: LoginOptions = {},
): Promise<{ principal: string }> {
  const origin = pageOrigin();
  const key = await loginKey();
  const issued = (await post(options, PATHS.challenge, {})) as {
    challenge?: unknown;
    nonce?: unknown;
  } | null;
  const challenge = fromBase64url(issued?.challenge, 32);
  const nonce = fromBase64url(issued?.nonce, 16);
  const o = new TextEncoder().encode(origin);
  const message = new Uint8Array(challenge.length + o.length + nonce.length);
  message.set(challenge, 0);
  message.set(o, challenge.length);
  message.set(nonce, challenge.length + o.length);
  const sig = new Uint8Array(await subtle().sign({ name: "Ed25519" }, key.privateKey, message));
  const result = (await post(options, PATHS.login, {
    publicKeyMultikey: key.principal,
    signature: toBase64url(sig),
    nonce: issued?.nonce,
    capabilities: (options.capabilities ?? []).map(toBase64url),
  })) as { principal?: unknown } | null;
  if (result?.principal !== key.principal) {
    throw new SeedAuthError("bad_response", "the server logged in another principal", 0);
  }
  return { principal: key.principal };
}

/** Ends the session on the server and clears its cookie; fine when not logged in. */
export async function logout(options: SiteOptions = {}): Promise<void> {
  await post(options, PATHS.logout, {});
}

/**
 * Hands the session more capability blobs (encoded bytes), e.g. ones another user signed for
 * this principal; the site forwards them to the daemon with every read for this user.
 *
 * @returns how many capabilities the session now holds.
 * @throws {SeedAuthError} `not_logged_in`, `too_many_capabilities`, … from the server.
 */
export async function addCapabilities(
  blobs: readonly Uint8Array[],
  options: SiteOptions = {},
): Promise<{ count: number }> {
  const r = (await post(options, PATHS.capabilities, {
    capabilities: blobs.map(toBase64url),
  })) as { count?: unknown } | null;
  return { count: typeof r?.count === "number" ? r.count : 0 };
}

/** The principal of this browser's stored key, or undefined when none was made yet. */
export async function localPrincipal(): Promise<string | undefined> {
  return (await loadKey())?.principal;
}
