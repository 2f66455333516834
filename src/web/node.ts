/**
 * Adapter from a Fetch API handler (`Request` → `Response`) to a `node:http` request listener.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** A Fetch API handler; `undefined` means "not mine" and becomes a 404. */
export type FetchHandler = (req: Request) => Response | undefined | Promise<Response | undefined>;

/** Options of {@link toNodeHandler}. */
export interface NodeHandlerOptions {
  /** Largest request body read, in bytes; a larger one is answered 413 unread. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * Origin the `Request` URL is built on (`https://site.example`). Default: `http://` plus the
   * request's Host header. Only the path and query come from the request line either way.
   */
  readonly origin?: string;
  /** Called with whatever the handler threw (the client gets a bare 500). Default: nothing. */
  readonly onError?: (err: unknown) => void;
}

/** Default {@link NodeHandlerOptions.maxBodyBytes}. */
export const DEFAULT_MAX_NODE_BODY_BYTES = 1024 * 1024;

/** Hop-by-hop headers: they describe the Node connection, not the request. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

class TooLarge extends Error {}

function plain(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

function readAll(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        req.off("data", onData);
        req.pause();
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks, total)));
    req.once("error", reject);
  });
}

function buildHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name.startsWith(":") || HOP_BY_HOP.has(name)) continue;
    try {
      headers.append(name, raw[i + 1] as string);
    } catch {
      // A header value the Fetch API cannot hold; Node already refuses most of them.
    }
  }
  return headers;
}

async function writeResponse(req: IncomingMessage, res: ServerResponse, r: Response) {
  const headers: Record<string, string | string[]> = {};
  r.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = r.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  res.writeHead(r.status, r.statusText || undefined, headers);
  if (r.body === null || req.method === "HEAD") {
    if (r.body !== null) await r.body.cancel().catch(() => {});
    res.end();
    return;
  }
  const reader = r.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) {
        await reader.cancel().catch(() => {});
        return;
      }
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            res.off("drain", go);
            res.off("close", go);
            resolve();
          };
          res.on("drain", go);
          res.on("close", go);
        });
      }
    }
    res.end();
  } catch (err) {
    reader.cancel().catch(() => {});
    res.destroy();
    throw err;
  }
}

/**
 * Wraps a Fetch API handler as a `node:http` (or `node:https`) request listener. The request body
 * is read first, bounded by `maxBodyBytes` (Content-Length and the bytes actually sent); the
 * response is streamed back with every `Set-Cookie` header kept separate.
 *
 * @example
 * ```ts
 * const auth = createAuthHandlers({ sessionSecret, origin });
 * http.createServer(toNodeHandler(async (req) => (await auth.handle(req)) ?? app(req)));
 * ```
 */
export function toNodeHandler(
  handler: FetchHandler,
  options: NodeHandlerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_NODE_BODY_BYTES;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError("maxBodyBytes must be a non-negative integer");
  }
  const base = options.origin === undefined ? undefined : new URL(options.origin).origin;

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      const target = req.url ?? "/";
      if (!target.startsWith("/")) throw new TypeError("not an origin-form request target");
      url = new URL(target, base ?? `http://${req.headers.host ?? "localhost"}`);
    } catch {
      plain(res, 400, "bad request");
      return;
    }
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > limit) {
      res.setHeader("connection", "close");
      plain(res, 413, "request body too large");
      return;
    }
    const method = req.method ?? "GET";
    let body: Buffer | undefined;
    if (method !== "GET" && method !== "HEAD") {
      try {
        body = await readAll(req, limit);
      } catch (err) {
        if (err instanceof TooLarge) {
          res.setHeader("connection", "close");
          plain(res, 413, "request body too large");
        } else {
          res.destroy();
        }
        return;
      }
    }
    const abort = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const request = new Request(url, {
      method,
      headers: buildHeaders(req),
      body: body === undefined || body.length === 0 ? null : new Uint8Array(body),
      signal: abort.signal,
    });
    let response: Response | undefined;
    try {
      response = await handler(request);
    } catch (err) {
      options.onError?.(err);
      plain(res, 500, "internal error");
      return;
    }
    if (response === undefined) {
      plain(res, 404, "not found");
      return;
    }
    try {
      await writeResponse(req, res, response);
    } catch (err) {
      options.onError?.(err);
    }
  }

  return (req, res) => {
    serve(req, res).catch((err: unknown) => {
      options.onError?.(err);
      plain(res, 500, "internal error");
    });
  };
}
