import { request as h1request } from "node:http";
import { connect as h2connect } from "node:http2";

/** A raw HTTP response as a test sees it. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Options of a raw request. `host: null` sends no Host header at all. */
export interface RawRequest {
  port: number;
  method?: string;
  path: string;
  host?: string | null;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/** HTTP/1.1 request with full control over the Host header (setHost: false). */
export function rawHttp1(r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(r.headers ?? {}) };
    const host = r.host === undefined ? `127.0.0.1:${r.port}` : r.host;
    if (host !== null) headers.host = host;
    const req = h1request(
      {
        host: "127.0.0.1",
        port: r.port,
        method: r.method ?? "GET",
        path: r.path,
        headers,
        setHost: false,
        agent: false,
      },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(r.body);
  });
}

/** HTTP/2 (h2c) request with a chosen `:authority`. `host: null` leaves :authority out. */
export function rawHttp2(r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`http://127.0.0.1:${r.port}`);
    session.on("error", reject);
    const authority = r.host === undefined ? `127.0.0.1:${r.port}` : r.host;
    const headers: Record<string, string> = {
      ":method": r.method ?? "GET",
      ":path": r.path,
      ":scheme": "http",
      ...(r.headers ?? {}),
    };
    if (authority !== null) headers[":authority"] = authority;
    const stream = session.request(headers, { endStream: r.body === undefined });
    let status = 0;
    let resHeaders: Record<string, string | string[] | undefined> = {};
    let body = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      resHeaders = h as Record<string, string | string[] | undefined>;
    });
    stream.on("data", (d: Buffer) => {
      body += d.toString();
    });
    stream.on("end", () => {
      session.close();
      resolve({ status, headers: resHeaders, body });
    });
    stream.on("error", (e) => {
      session.destroy();
      reject(e);
    });
    if (r.body !== undefined) stream.end(r.body);
  });
}

/** True when a response carries any Access-Control-* header. */
export function hasCorsHeaders(res: RawResponse): boolean {
  return Object.keys(res.headers).some((k) => k.toLowerCase().startsWith("access-control-"));
}

/** Path of Daemon.GetInfo, the cheapest authenticated RPC. */
export const GET_INFO_PATH = "/com.seed.daemon.v1alpha.Daemon/GetInfo";

/** A Connect JSON GetInfo call over HTTP/1.1 with a bearer token (and extra headers). */
export function getInfoRaw(
  port: number,
  token: string,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return rawHttp1({
    port,
    method: "POST",
    path: GET_INFO_PATH,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: "{}",
  });
}

/** A 5-byte length-prefixed message, as gRPC, gRPC-web and Connect streams frame them. */
export function envelope(flags: number, payload: Uint8Array, declaredLength = payload.length) {
  const out = new Uint8Array(5 + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, declaredLength >>> 0);
  out.set(payload, 5);
  return out;
}

/** Splits length-prefixed messages; what does not parse is dropped. */
export function envelopes(buf: Uint8Array): { flags: number; data: Uint8Array }[] {
  const out: { flags: number; data: Uint8Array }[] = [];
  let at = 0;
  while (at + 5 <= buf.length) {
    const len = new DataView(buf.buffer, buf.byteOffset + at + 1, 4).getUint32(0);
    if (at + 5 + len > buf.length) break;
    out.push({ flags: buf[at] ?? 0, data: buf.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}
