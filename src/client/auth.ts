import type { Interceptor } from "@connectrpc/connect";

/**
 * Adds `Authorization: Bearer <token>` to every call (unary and streaming). `token` may be a
 * function (e.g. {@link localTokenSource}), asked on every call, for a token that can change.
 */
export function bearerInterceptor(token: string | (() => string)): Interceptor {
  if (typeof token === "string") {
    const value = `Bearer ${token}`;
    return (next) => (req) => {
      req.header.set("authorization", value);
      return next(req);
    };
  }
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${checkToken(token())}`);
    return next(req);
  };
}

/**
 * `token`, trimmed, when it can be a bearer token.
 *
 * @throws {TypeError} for an empty token or one that is not printable ASCII (never quoting it).
 */
export function checkToken(token: unknown): string {
  if (typeof token !== "string" || token.trim() === "") {
    throw new TypeError("token must be the daemon's bearer token");
  }
  if (!/^[!-~]+$/.test(token.trim())) {
    throw new TypeError("token must be printable ASCII without spaces");
  }
  return token.trim();
}
