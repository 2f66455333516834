/**
 * Origin normalisation and the origin allowlist policy (docs/architecture.md, pipeline step 2).
 *
 * Everything here is pure: no I/O, no clock, no globals. The request pipeline decides what to do
 * with a verdict; this module only decides what the verdict is.
 *
 * @module
 */

import { quoted } from "../util/text.js";
import { hasValidALabels } from "./punycode.js";

/**
 * Longest input we look at. Real origins are far shorter; the cap keeps a hostile header from
 * costing more than a bounded amount of parsing.
 */
const MAX_ORIGIN_LENGTH = 2048;

/** Scheme grammar from RFC 3986 §3.1, lower-case only (the header value is checked as given). */
const SCHEME_RE = /^[a-z][a-z0-9+.-]*$/;

/**
 * Whole-string shape of a serialized origin: `scheme "://" host [":" port]`, nothing after it.
 * The host part excludes every character that would start another URL component, so a value that
 * passes cannot smuggle a path, query, fragment or userinfo past `new URL()`'s lenient parser
 * (which would otherwise silently drop `?`, `#`, `@`, backslashes and tabs). Non-ASCII is allowed
 * so configured IDN hosts (`https://bücher.example`) reach the IDNA step.
 */
const ORIGIN_SHAPE_RE =
  /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[0-9A-Fa-f:.]+\]|[^:/?#@\\[\]]+)(?::(\d{1,5}))?$/;

/**
 * Characters that never appear in a serialized origin. Whitespace and controls (ASCII and
 * Unicode) are refused outright instead of being stripped the way the URL parser strips tabs and
 * newlines: a header that needed fixing up was not produced by a browser. `%` is refused because
 * browsers serialize hosts already decoded (and IDN hosts as punycode). `*` is refused because a
 * wildcard is never an origin, and accepting it here would let a config entry look like a pattern.
 */
const FORBIDDEN_CHAR_RE = /[\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}%*]/u;

/**
 * Schemes whose origin is opaque by the URL standard: browsers send `null` for them, never
 * `scheme://host`. A `file://host` or `javascript://host` value is therefore never a real origin.
 */
const OPAQUE_ORIGIN_SCHEMES = new Set(["file", "data", "javascript", "about", "blob"]);

/**
 * WHATWG "special" schemes. The URL parser lower-cases, IDNA-maps and validates their hosts, and
 * drops their default ports; for every other scheme the host is opaque and we canonicalise it
 * ourselves.
 */
const SPECIAL_SCHEMES = new Set(["http", "https", "ws", "wss", "ftp"]);

/**
 * Host characters allowed for non-special (app) schemes after lower-casing. The URL parser keeps
 * such hosts opaque and percent-encodes anything exotic, so we keep to plain DNS-like names:
 * anything else could compare equal or unequal depending on who encoded it.
 */
const OPAQUE_HOST_RE = /^[a-z0-9._~-]+$/;

/** Schemes that {@link parsePairableOrigin} accepts. */
const PAIRABLE_SCHEMES = new Set(["http", "https"]);

/** Outcome of analysing an origin string, with a human reason when it is not acceptable. */
type Analysis = { ok: true; origin: string } | { ok: false; reason: string };

/**
 * Shared core of {@link normalizeOrigin} and {@link parsePairableOrigin}: one implementation, so
 * the two can never disagree about what a canonical origin is. It does not handle `null`.
 */
function analyzeOrigin(raw: string): Analysis {
  if (raw.length === 0) return { ok: false, reason: "origin is empty" };
  if (raw.length > MAX_ORIGIN_LENGTH) {
    return { ok: false, reason: `origin is longer than ${MAX_ORIGIN_LENGTH} characters` };
  }
  if (raw.includes("*")) return { ok: false, reason: "wildcards are not allowed in an origin" };
  if (FORBIDDEN_CHAR_RE.test(raw)) {
    return {
      ok: false,
      reason: "origin contains whitespace, control characters or percent-encoding",
    };
  }
  const sep = raw.indexOf("://");
  if (sep <= 0) {
    return { ok: false, reason: "origin must have the form scheme://host[:port]" };
  }
  const scheme = raw.slice(0, sep).toLowerCase();
  if (!SCHEME_RE.test(scheme)) {
    return { ok: false, reason: `origin has an invalid scheme ${quoted(raw.slice(0, sep))}` };
  }
  if (OPAQUE_ORIGIN_SCHEMES.has(scheme)) {
    return { ok: false, reason: `${scheme}: URLs have no origin of the form scheme://host` };
  }
  const rest = raw.slice(sep + 3);
  // Named checks before the shape test so the caller learns which rule was broken.
  if (rest.includes("@")) return { ok: false, reason: "origin must not contain userinfo" };
  if (rest.includes("?")) return { ok: false, reason: "origin must not contain a query" };
  if (rest.includes("#")) return { ok: false, reason: "origin must not contain a fragment" };
  if (rest.includes("/") || rest.includes("\\")) {
    return { ok: false, reason: "origin must not contain a path" };
  }
  if (rest.length === 0) return { ok: false, reason: "origin has an empty host" };
  const shape = ORIGIN_SHAPE_RE.exec(raw);
  if (shape === null) {
    return { ok: false, reason: "origin must have the form scheme://host[:port]" };
  }

  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "origin is not a valid URL (bad host or port)" };
  }
  // The shape test already excludes these; checked again so a future parser quirk fails closed.
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    return { ok: false, reason: "origin must have the form scheme://host[:port]" };
  }
  if (url.hostname === "") return { ok: false, reason: "origin has an empty host" };
  if (!hasValidALabels(url.hostname.toLowerCase())) {
    return { ok: false, reason: "origin has a malformed punycode (xn--) label" };
  }

  if (SPECIAL_SCHEMES.has(scheme)) {
    // `url.host` is already canonical here: lower-case, punycode, IPv4/IPv6 compressed, and the
    // scheme's default port removed.
    return { ok: true, origin: `${scheme}://${url.host}` };
  }

  // Non-special scheme (app://seed): the parser leaves the host opaque and keeps its case, so
  // lower-case it ourselves. IPv6 literals are still parsed and compressed by the URL parser.
  const hostname = url.hostname.toLowerCase();
  if (!hostname.startsWith("[") && !OPAQUE_HOST_RE.test(hostname)) {
    return {
      ok: false,
      reason: "origin host for this scheme may only contain letters, digits, '.', '-', '_', '~'",
    };
  }
  return { ok: true, origin: `${scheme}://${hostname}${url.port === "" ? "" : `:${url.port}`}` };
}

/**
 * Canonicalises a request's `Origin` header value so it can be compared with the allowlist.
 *
 * The result is `scheme://host[:port]` with scheme and host lower-cased, the default port of a
 * special scheme dropped (80 for http, 443 for https, as the URL standard does), IPv6 literals
 * compressed and kept in brackets (`http://[::1]:8080`), and IDN hosts of special schemes in
 * punycode (`https://xn--bcher-kva.example`). Non-special schemes such as `app://seed` are
 * accepted; their host must be a plain name (letters, digits, `.`, `-`, `_`, `~`) or an IPv6
 * literal, since the URL parser leaves it opaque.
 *
 * Browsers never send a path, so none is accepted, not even a lone trailing `/`.
 *
 * @param raw - The header value exactly as received (not trimmed).
 * @returns The canonical origin; the string `"null"` for the opaque `null` origin (exact,
 *   lower-case); or `null` when `raw` is not a serialized origin: empty, longer than 2048
 *   characters, containing whitespace, control characters, `%` or a `*` wildcard, having a path,
 *   query, fragment or userinfo, having an opaque-origin scheme (`file:`, `data:`, …), or failing
 *   to parse.
 */
export function normalizeOrigin(raw: string): string | null {
  if (typeof raw !== "string") return null;
  if (raw === "null") return "null";
  const analysis = analyzeOrigin(raw);
  return analysis.ok ? analysis.origin : null;
}

/**
 * Validates an origin a user asks to pair (the PairOrigin RPC); stricter than
 * {@link normalizeOrigin} because the result becomes a lasting grant.
 *
 * Only `http` and `https` origins can be paired: those are the origins of web pages, which is
 * what pairing is for. Desktop app schemes (`app://seed`) are trusted through configuration, not
 * through pairing, so a web page that obtained the token cannot pair a scheme that no browser tab
 * can have.
 *
 * Refused: surrounding whitespace (nothing is trimmed), `null`, any `*` wildcard, a path (a single
 * trailing `/` is allowed and dropped, since people copy origins from the address bar), a query,
 * a fragment, userinfo, an empty host, and anything that does not parse.
 *
 * @param raw - The origin as the user typed it.
 * @returns The canonical origin (same form as {@link normalizeOrigin}), or a short human reason
 *   that quotes at most 128 characters of the input.
 */
export function parsePairableOrigin(
  raw: string,
): { ok: true; origin: string } | { ok: false; reason: string } {
  if (typeof raw !== "string") return { ok: false, reason: "origin must be a string" };
  if (raw.length === 0) return { ok: false, reason: "origin is empty" };
  if (raw.trim() !== raw) {
    return { ok: false, reason: "origin must not have leading or trailing whitespace" };
  }
  if (raw.toLowerCase() === "null") {
    return { ok: false, reason: "the null origin cannot be paired" };
  }
  if (raw.includes("*")) return { ok: false, reason: "wildcards cannot be paired" };
  const sep = raw.indexOf("://");
  const scheme = sep > 0 ? raw.slice(0, sep).toLowerCase() : "";
  if (!PAIRABLE_SCHEMES.has(scheme)) {
    return {
      ok: false,
      reason:
        sep > 0
          ? `only http and https origins can be paired, not ${quoted(raw.slice(0, sep))}`
          : "origin must have the form https://host[:port]",
    };
  }
  // Exactly one trailing slash right after the authority; `https://a.com//` still fails below.
  const trimmed =
    raw.endsWith("/") && raw.indexOf("/", sep + 3) === raw.length - 1 ? raw.slice(0, -1) : raw;
  return analyzeOrigin(trimmed);
}

/**
 * Read-only view of origins granted at runtime (the paired-origin store). Kept as a one-method
 * interface so the policy stays pure and testable with a plain `Set`.
 */
export interface DynamicOriginSource {
  /**
   * @param origin - A canonical origin as returned by {@link normalizeOrigin}.
   * @returns Whether the origin is currently allowed.
   */
  has(origin: string): boolean;
}

/** Verdict of {@link OriginPolicy.check}. */
export type OriginVerdict =
  /** No `Origin` header: a non-browser client; the origin policy does not apply. */
  | { kind: "none" }
  /** Allowed; `origin` is the canonical form, to echo in `Access-Control-Allow-Origin`. */
  | { kind: "allowed"; origin: string }
  /** Refused: `invalid` when the header is not an origin at all, `not_allowed` otherwise. */
  | { kind: "denied"; reason: "invalid" | "not_allowed" };

/**
 * The origin allowlist: static entries from configuration plus an optional dynamic source
 * (paired origins).
 *
 * The defaults `null` and `app://seed` are not added here: the config layer owns defaults, so
 * this class allows exactly what it is given.
 */
export class OriginPolicy {
  readonly #static: ReadonlySet<string>;
  readonly #dynamic: DynamicOriginSource | undefined;

  /**
   * @param staticAllowed - Origins allowed for the whole run; each is normalized with
   *   {@link normalizeOrigin} (`"null"` allowed). Entries must be exact origins: no path, not even
   *   a trailing `/`.
   * @param dynamic - Consulted on every {@link check} call, after the static set, so a pairing or
   *   unpairing takes effect on the next request. Never consulted for the `null` origin.
   * @throws Error naming the first entry that is not a valid origin, so a bad `--cors-origin`
   *   stops startup instead of silently allowing nothing (or something else).
   */
  constructor(staticAllowed: string[], dynamic?: DynamicOriginSource) {
    const set = new Set<string>();
    for (const entry of staticAllowed) {
      const normalized = normalizeOrigin(entry);
      if (normalized === null) {
        throw new Error(
          `invalid allowed origin ${quoted(String(entry))}: expected scheme://host[:port] ` +
            "(no path, not even a trailing '/', no wildcard) or null",
        );
      }
      set.add(normalized);
    }
    this.#static = set;
    this.#dynamic = dynamic;
  }

  /**
   * Decides whether a request's `Origin` header is allowed.
   *
   * @param originHeader - The header value, or `undefined` when the request has none. An empty
   *   value is a header that is present, and is refused as invalid.
   * @returns The verdict; see {@link OriginVerdict}.
   */
  check(originHeader: string | undefined): OriginVerdict {
    if (originHeader === undefined) return { kind: "none" };
    const origin = normalizeOrigin(originHeader);
    if (origin === null) return { kind: "denied", reason: "invalid" };
    if (this.#static.has(origin)) return { kind: "allowed", origin };
    // `null` is shared by every sandboxed frame and file:// page, so only an explicit static entry
    // may allow it; a runtime source must never widen that.
    if (origin !== "null" && this.#dynamic?.has(origin) === true) {
      return { kind: "allowed", origin };
    }
    return { kind: "denied", reason: "not_allowed" };
  }
}
