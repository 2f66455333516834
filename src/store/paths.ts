import { STORE_ERROR_MESSAGES, StoreError } from "./errors.js";

// Seed's rules: "" (home) or "/seg/seg"; no empty segment, no trailing "/", and none of the
// characters that break quoting or line-based formats.
const PATH_RE = /^(?:\/[^/"'\\\0\r\n\t]+)*$/;

/** Longest path accepted, in UTF-16 code units; Seed sets none, this only bounds keys. */
export const MAX_PATH_LENGTH = 4096;

/** True for a path {@link validatePath} accepts. */
export function isValidPath(path: unknown): path is string {
  return typeof path === "string" && path.length <= MAX_PATH_LENGTH && PATH_RE.test(path);
}

/**
 * Checks a document path: `""` or `/seg/seg`, no trailing `/`, no empty segment, no `"`, `'`,
 * backslash, NUL, CR, LF or TAB.
 *
 * @throws {StoreError} `invalid_argument` with a fixed message otherwise.
 */
export function validatePath(path: unknown): string {
  if (!isValidPath(path)) throw new StoreError("invalid_argument", STORE_ERROR_MESSAGES.badPath);
  return path;
}

/** `path` and every segment prefix of it, shortest first: `/a/b` → `["", "/a", "/a/b"]`. */
export function pathPrefixes(path: string): string[] {
  const out = [""];
  if (path === "") return out;
  let at = path.indexOf("/", 1);
  while (at !== -1) {
    out.push(path.slice(0, at));
    at = path.indexOf("/", at + 1);
  }
  out.push(path);
  return out;
}
