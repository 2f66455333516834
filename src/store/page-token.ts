import { STORE_ERROR_MESSAGES, StoreError } from "./errors.js";

/** Page size when the caller asks for none (0 or absent). */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest page served; bigger requests are clamped. */
export const MAX_PAGE_SIZE = 1000;
const MAX_TOKEN_LENGTH = 8192;

/** Paging options of the list reads. */
export interface PageOptions {
  /** Entries per page; 0 or absent is {@link DEFAULT_PAGE_SIZE}, capped at {@link MAX_PAGE_SIZE}. */
  readonly pageSize?: number;
  /** `nextPageToken` of the previous page; absent or `""` for the first page. */
  readonly pageToken?: string;
}

/** One page of a list read. */
export interface Page<T> {
  readonly items: T[];
  /** Token of the next page; `""` when this is the last one. */
  readonly nextPageToken: string;
}

/** @throws {StoreError} `invalid_argument` for a negative or non-integer size. */
export function pageSizeOf(size: number | undefined): number {
  if (size === undefined || size === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new StoreError("invalid_argument", STORE_ERROR_MESSAGES.badPageSize);
  }
  return Math.min(size, MAX_PAGE_SIZE);
}

/**
 * Encodes the last key of a page. The token is base64url of a JSON array tagged with the list it
 * belongs to; it is only ever decoded back into bound statement parameters, never into SQL.
 */
export function encodePageToken(kind: string, key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([kind, ...key]), "utf8").toString("base64url");
}

/**
 * Decodes a token made by {@link encodePageToken} for list `kind` and checks each key element's
 * type against `shape` (`"s"` string, `"n"` safe non-negative integer).
 *
 * @returns the key, or `undefined` for the first page (absent or `""`).
 * @throws {StoreError} `invalid_argument` for anything else.
 */
export function decodePageToken(
  kind: string,
  shape: readonly ("s" | "n")[],
  token: string | undefined,
): (string | number)[] | undefined {
  if (token === undefined || token === "") return undefined;
  const bad = () => new StoreError("invalid_argument", STORE_ERROR_MESSAGES.badPageToken);
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) throw bad();
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(value) || value.length !== shape.length + 1 || value[0] !== kind) throw bad();
  const key = value.slice(1) as unknown[];
  key.forEach((v, i) => {
    const ok =
      shape[i] === "s" ? typeof v === "string" : Number.isSafeInteger(v) && (v as number) >= 0;
    if (!ok) throw bad();
  });
  // Only the exact encoding of the key is a token: no padding or alternative spellings.
  if (encodePageToken(kind, key as (string | number)[]) !== token) throw bad();
  return key as (string | number)[];
}
