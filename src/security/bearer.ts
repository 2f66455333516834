/**
 * Extracts the token from an `Authorization` header value. The scheme is case-insensitive
 * (RFC 7235); anything that is not exactly `Bearer <token68>` yields undefined. Query strings and
 * cookies are never consulted: they leak into logs, history and Referer headers.
 */
export function parseBearer(header: string | null | undefined): string | undefined {
  if (header === undefined || header === null) return undefined;
  const m = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  return m?.[1];
}
