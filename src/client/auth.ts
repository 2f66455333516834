import type { Interceptor } from "@connectrpc/connect";

/** Adds `Authorization: Bearer <token>` to every call (unary and streaming). */
export function bearerInterceptor(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => (req) => {
    req.header.set("authorization", value);
    return next(req);
  };
}
