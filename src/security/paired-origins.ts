/**
 * Origins the user paired at runtime, each with its own origin-bound token (docs/architecture.md, pipeline step 2,
 * §5 `paired_origins.json`).
 *
 * Only SHA-256 digests of tokens are kept, in memory and on disk: the token itself is shown once,
 * in the `pair()` result, and a leaked data file does not leak a usable credential.
 *
 * @module
 */

import { randomBytes, timingSafeEqual } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync } from "node:fs";
import { DomainError } from "../errors.js";
import { removeStaleTemps, writeFileAtomic } from "../util/atomic-write.js";
import { quoted } from "../util/text.js";
import type { DynamicOriginSource } from "./origin.js";
import { normalizeOrigin, parsePairableOrigin } from "./origin.js";
import { tokenDigest } from "./token-store.js";

/** File name of the store inside the data dir. */
export const PAIRED_ORIGINS_FILE_NAME = "paired_origins.json";

/**
 * Prefix of every origin-bound token, so one can be told from the master token at a glance (in a
 * support request, a secret scanner, or a bearer check that routes by kind).
 */
export const PAIRED_ORIGIN_TOKEN_PREFIX = "sdo_";

/** Longest label accepted, in Unicode code points. */
export const MAX_PAIRED_ORIGIN_LABEL_LENGTH = 128;

/** Current on-disk format version. */
const FILE_VERSION = 1;

/**
 * Characters refused in labels: controls, lone surrogates, line/paragraph separators and bidi
 * controls. Labels are shown to the user in UIs and logs, where these can forge lines or reorder
 * the text around them to spoof an origin.
 */
const LABEL_FORBIDDEN_RE =
  /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

/** ISO 8601 date-time with a zone, as produced by `Date#toISOString` (and hand-editable). */
const ISO_DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** Lower-case hex SHA-256 digest. */
const TOKEN_HASH_RE = /^[0-9a-f]{64}$/;

/** Error codes, named after the Connect codes the RPC layer maps them to. */
export type PairedOriginsErrorCode = "invalid_argument" | "not_found" | "failed_precondition";

/**
 * Every error this module raises on purpose. Messages never contain a token or a token hash, so
 * they are safe to return to the caller and to log. Filesystem errors from a failed write are not
 * wrapped: they are internal errors for the RPC layer.
 */
export class PairedOriginsError extends DomainError<PairedOriginsErrorCode> {
  override readonly name = "PairedOriginsError";
}

/** A paired origin as shown to callers: never its token or token hash. */
export interface PairedOriginInfo {
  /** Canonical origin (see `normalizeOrigin`). */
  origin: string;
  /** Human label given at pairing time; may be empty. */
  label: string;
  /** When the current token was issued (pairing again resets it). */
  createTime: Date;
}

/** Result of {@link PairedOriginStore.pair}: the only place the token is ever visible. */
export interface PairResult extends PairedOriginInfo {
  /** The origin-bound bearer token, `sdo_` + 43 base64url characters. Shown once. */
  token: string;
}

/** In-memory record. */
interface Entry {
  readonly origin: string;
  readonly label: string;
  readonly createTime: Date;
  /** SHA-256 of the token, 32 bytes. */
  readonly tokenHash: Buffer;
}

/** Shape written to disk. */
interface FileEntry {
  origin: string;
  label: string;
  createTime: string;
  tokenHash: string;
}

/** Returns why `label` is unacceptable, or `undefined` when it is fine. */
function labelProblem(label: unknown): string | undefined {
  if (typeof label !== "string") return "label must be a string";
  // Code points, not UTF-16 units, so an emoji counts as one character as a user would expect.
  if ([...label].length > MAX_PAIRED_ORIGIN_LABEL_LENGTH) {
    return `label must be at most ${MAX_PAIRED_ORIGIN_LABEL_LENGTH} characters`;
  }
  if (LABEL_FORBIDDEN_RE.test(label)) {
    return "label must contain only printable characters";
  }
  return undefined;
}

/** Builds the load-time error; one wording so every refusal says where and what to do. */
function refuse(filePath: string, detail: string, cause?: unknown): PairedOriginsError {
  return new PairedOriginsError(
    "failed_precondition",
    `refusing to load paired origins from ${filePath}: ${detail}. ` +
      "The file was left untouched; fix or remove it, then restart the daemon.",
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Reads the store file, refusing anything but a private regular file.
 *
 * @returns The content, or `undefined` when the file does not exist.
 */
function readStoreFile(filePath: string): string | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(filePath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw refuse(filePath, `it cannot be inspected (${code ?? "unknown error"})`, err);
  }
  // lstat, not stat: a symlink could point the daemon at a file another user controls.
  if (st.isSymbolicLink()) throw refuse(filePath, "it is a symbolic link, not a regular file");
  if (!st.isFile()) throw refuse(filePath, "it is not a regular file");
  // Group/other write would let another account add its own origin; read would reveal which
  // sites the user trusts.
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
    throw refuse(filePath, `it is accessible by group or others (mode 0${mode}); chmod it to 600`);
  }

  let fd: number;
  try {
    // O_NOFOLLOW closes the window between lstat and open in which the file could be swapped
    // for a symlink; O_NONBLOCK keeps a swapped-in FIFO from hanging startup.
    fd = openSync(
      filePath,
      constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0),
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") throw refuse(filePath, "it is a symbolic link, not a regular file", err);
    throw refuse(filePath, `it cannot be opened (${code ?? "unknown error"})`, err);
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile() || fst.dev !== st.dev || fst.ino !== st.ino) {
      throw refuse(filePath, "it was replaced while being opened");
    }
    try {
      // fatal: invalid UTF-8 means corruption, not text to be patched with U+FFFD.
      return new TextDecoder("utf-8", { fatal: true }).decode(readFileSync(fd));
    } catch (err) {
      throw refuse(filePath, "it is not valid UTF-8", err);
    }
  } finally {
    closeSync(fd);
  }
}

/** True for a non-null, non-array object. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Throws unless `obj` has exactly the `expected` keys: unknown fields mean a format we do not know. */
function requireExactKeys(
  filePath: string,
  obj: Record<string, unknown>,
  expected: readonly string[],
  where: string,
): void {
  for (const key of expected) {
    if (!Object.hasOwn(obj, key)) throw refuse(filePath, `${where} is missing "${key}"`);
  }
  for (const key of Object.keys(obj)) {
    if (!expected.includes(key)) {
      throw refuse(filePath, `${where} has an unexpected field ${quoted(key)}`);
    }
  }
}

/** Validates the parsed file strictly; any deviation is corruption or a format we do not know. */
function parseStoreFile(filePath: string, text: string): Map<string, Entry> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw refuse(filePath, "it is not valid JSON", err);
  }
  if (!isRecord(doc)) throw refuse(filePath, "it does not contain a JSON object");
  requireExactKeys(filePath, doc, ["version", "origins"], "the top-level object");
  if (doc.version !== FILE_VERSION) {
    throw refuse(filePath, `"version" must be ${FILE_VERSION}`);
  }
  if (!Array.isArray(doc.origins)) throw refuse(filePath, `"origins" must be an array`);

  const entries = new Map<string, Entry>();
  const hashes = new Set<string>();
  doc.origins.forEach((item: unknown, i: number) => {
    const where = `origins[${i}]`;
    if (!isRecord(item)) throw refuse(filePath, `${where} is not an object`);
    requireExactKeys(filePath, item, ["origin", "label", "createTime", "tokenHash"], where);
    const { origin, label, createTime, tokenHash } = item;

    // Must already be canonical: a hand-edited `HTTPS://A.com` would otherwise never match.
    const parsed = typeof origin === "string" ? parsePairableOrigin(origin) : undefined;
    if (typeof origin !== "string" || !parsed?.ok || parsed.origin !== origin) {
      throw refuse(filePath, `${where}.origin is not a canonical http(s) origin`);
    }
    if (entries.has(origin)) {
      throw refuse(filePath, `${where}.origin is a duplicate of ${quoted(origin)}`);
    }

    const problem = labelProblem(label);
    if (problem !== undefined) throw refuse(filePath, `${where}.label is invalid: ${problem}`);

    const time = typeof createTime === "string" ? new Date(createTime) : undefined;
    if (
      typeof createTime !== "string" ||
      !ISO_DATE_TIME_RE.test(createTime) ||
      time === undefined ||
      Number.isNaN(time.getTime())
    ) {
      throw refuse(filePath, `${where}.createTime is not an ISO 8601 date-time`);
    }

    if (typeof tokenHash !== "string" || !TOKEN_HASH_RE.test(tokenHash)) {
      throw refuse(filePath, `${where}.tokenHash is not a lower-case hex SHA-256 digest`);
    }
    // Two origins sharing a token would make findByToken ambiguous.
    if (hashes.has(tokenHash)) throw refuse(filePath, `${where}.tokenHash is a duplicate`);
    hashes.add(tokenHash);

    entries.set(origin, {
      origin,
      label: label as string,
      createTime: time,
      tokenHash: Buffer.from(tokenHash, "hex"),
    });
  });
  return entries;
}

/** Serialises the store in the on-disk format. */
function serialize(entries: ReadonlyMap<string, Entry>): string {
  const origins: FileEntry[] = Array.from(entries.values(), (e) => ({
    origin: e.origin,
    label: e.label,
    createTime: e.createTime.toISOString(),
    tokenHash: e.tokenHash.toString("hex"),
  }));
  return `${JSON.stringify({ version: FILE_VERSION, origins }, null, 2)}\n`;
}

/**
 * The paired-origin store, persisted in `<dataDir>/paired_origins.json` (mode 0600).
 *
 * Format: `{ "version": 1, "origins": [ { "origin", "label", "createTime", "tokenHash" } ] }`,
 * `createTime` an ISO 8601 string and `tokenHash` the lower-case hex SHA-256 of the token's UTF-8
 * bytes.
 *
 * Every mutation writes the file first and swaps the in-memory state only after the write
 * succeeded, so a failed write leaves both unchanged. Methods are synchronous and the state is
 * replaced as a whole, so a reader never sees a half-applied change. Only one process should own
 * a data dir; concurrent writers from several processes are not coordinated.
 *
 * Pass it to `OriginPolicy` as the dynamic source: pairing and unpairing take effect on the next
 * request.
 */
export class PairedOriginStore implements DynamicOriginSource {
  readonly #filePath: string;
  /** Replaced as a whole by each mutation, never mutated in place, so a failed write changes nothing. */
  #entries: ReadonlyMap<string, Entry>;

  private constructor(filePath: string, entries: Map<string, Entry>) {
    this.#filePath = filePath;
    this.#entries = entries;
  }

  /**
   * Loads the store.
   *
   * @param filePath - Path of `paired_origins.json`. A missing file is an empty store (the file is
   *   only created on the first pairing).
   * @throws PairedOriginsError (`failed_precondition`) when the file is a symlink, not a regular
   *   file, accessible by group or others, unreadable, not valid UTF-8 JSON, not of the expected
   *   shape, or holds a non-canonical or duplicate origin. The file is never modified or emptied:
   *   silently dropping pairings would hide corruption or tampering.
   */
  static load(filePath: string): PairedOriginStore {
    // A daemon killed mid-pairing leaves its temp file; the daemon is the file's only writer.
    removeStaleTemps(filePath);
    const text = readStoreFile(filePath);
    const entries = text === undefined ? new Map<string, Entry>() : parseStoreFile(filePath, text);
    return new PairedOriginStore(filePath, entries);
  }

  /**
   * Whether `origin` is paired. Called on every browser request, so it does no normalisation.
   *
   * @param origin - A canonical origin, as returned by `normalizeOrigin`.
   */
  has(origin: string): boolean {
    return this.#entries.has(origin);
  }

  /** All paired origins in pairing order, without tokens or token hashes. */
  list(): PairedOriginInfo[] {
    return Array.from(this.#entries.values(), (e) => ({
      origin: e.origin,
      label: e.label,
      createTime: new Date(e.createTime.getTime()),
    }));
  }

  /**
   * Pairs an origin and issues its token. Pairing an already paired origin replaces its label and
   * token (the old token stops working at once) and resets its `createTime`.
   *
   * @param origin - Validated with `parsePairableOrigin`: http(s) only, one trailing `/` allowed.
   * @param label - Up to 128 printable characters; may be empty.
   * @returns The stored entry and the token, which is not kept anywhere and cannot be shown again.
   * @throws PairedOriginsError (`invalid_argument`) for an invalid origin or label; the fs error
   *   when the file cannot be written (nothing changed then).
   */
  pair(origin: string, label: string): PairResult {
    const parsed = parsePairableOrigin(origin);
    if (!parsed.ok) {
      throw new PairedOriginsError("invalid_argument", `invalid origin: ${parsed.reason}`);
    }
    const problem = labelProblem(label);
    if (problem !== undefined) throw new PairedOriginsError("invalid_argument", problem);

    // 256 bits from the CSPRNG: unguessable, and the digest-only storage needs no salt or KDF.
    const token = `${PAIRED_ORIGIN_TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
    const entry: Entry = {
      origin: parsed.origin,
      label,
      createTime: new Date(),
      tokenHash: tokenDigest(token),
    };
    const next = new Map(this.#entries);
    // Delete first so a re-paired origin moves to the end, keeping the list in createTime order.
    next.delete(entry.origin);
    next.set(entry.origin, entry);
    this.#commit(next);
    return {
      origin: entry.origin,
      label: entry.label,
      createTime: new Date(entry.createTime.getTime()),
      token,
    };
  }

  /**
   * Revokes a paired origin; its token stops working at once.
   *
   * @param origin - The origin, in any form `parsePairableOrigin` accepts.
   * @throws PairedOriginsError `invalid_argument` when `origin` is not a pairable origin,
   *   `not_found` when it is not paired; the fs error when the file cannot be written (nothing
   *   changed then).
   */
  unpair(origin: string): void {
    const parsed = parsePairableOrigin(origin);
    if (!parsed.ok) {
      throw new PairedOriginsError("invalid_argument", `invalid origin: ${parsed.reason}`);
    }
    if (!this.#entries.has(parsed.origin)) {
      throw new PairedOriginsError("not_found", `origin ${quoted(parsed.origin)} is not paired`);
    }
    const next = new Map(this.#entries);
    next.delete(parsed.origin);
    this.#commit(next);
  }

  /**
   * Checks an origin-bound token against the origin a request came from.
   *
   * @param token - The presented bearer token.
   * @param origin - The request's `Origin` header (normalised here); `undefined` never matches,
   *   because an origin-bound token is only valid from its origin.
   * @returns True only when `origin` is paired and `token` is its current token.
   */
  verifyToken(token: string, origin: string | undefined): boolean {
    if (typeof token !== "string") return false;
    return this.verifyTokenDigest(tokenDigest(token), origin);
  }

  /** {@link verifyToken} for a token already hashed with `tokenDigest`. */
  verifyTokenDigest(digest: Buffer, origin: string | undefined): boolean {
    if (origin === undefined) return false;
    const normalized = normalizeOrigin(origin);
    if (normalized === null) return false;
    const entry = this.#entries.get(normalized);
    if (entry === undefined) return false;
    return timingSafeEqual(digest, entry.tokenHash);
  }

  /**
   * Finds the origin a token is bound to.
   *
   * Every entry is compared, with no early exit, so the time taken does not reveal at which
   * position a matching entry sits.
   *
   * @param token - The presented bearer token.
   * @returns The canonical origin, or `undefined` when no paired origin has this token.
   */
  findByToken(token: string): string | undefined {
    if (typeof token !== "string") return undefined;
    const digest = tokenDigest(token);
    let found: string | undefined;
    for (const entry of this.#entries.values()) {
      if (timingSafeEqual(digest, entry.tokenHash)) found = entry.origin;
    }
    return found;
  }

  /** Persists `next`, then makes it current; if the write throws, nothing has changed. */
  #commit(next: Map<string, Entry>): void {
    writeFileAtomic(this.#filePath, serialize(next), 0o600);
    this.#entries = next;
  }
}
