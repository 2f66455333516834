/**
 * The wire as the scenarios speak it: the daemon's RPC paths, the Connect, gRPC and gRPC-web
 * framings, one request over a kept-alive HTTP/1.1 agent or a shared h2c session with a bound on
 * its time, a pool of h2c sessions, an authorised GetInfo, the RPC outcome of an answer in any
 * of the protocols, HTTP/2 frames on a raw socket, and a minimal raw h2c exchange for header
 * sets Node's HTTP/2 client refuses to send (two `authorization` fields).
 *
 * @module
 */

import { type Agent, request as h1request } from "node:http";
import {
  type ClientHttp2Session,
  connect as h2connect,
  type IncomingHttpHeaders,
} from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import type { TestDaemon } from "../helpers/daemon.js";
import { GET_INFO_PATH } from "../helpers/http.js";
import { settleOnce } from "./lib.js";

/** The daemon's three services. */
export const SERVICES: readonly DescService[] = [Daemon, Documents, AccessControl];

/** Every RPC of the daemon with its path. */
export const METHODS: readonly { readonly path: string; readonly method: DescMethod }[] =
  SERVICES.flatMap((s) => s.methods.map((m) => ({ path: `/${s.typeName}/${m.name}`, method: m })));

/** The framings a request can use. */
export type Framing =
  | "connect-json"
  | "connect-proto"
  | "connect-stream-json"
  | "connect-stream-proto"
  | "grpc"
  | "grpc-web"
  | "grpc-web-text";

/** The `content-type` of each framing. */
export const CONTENT_TYPE: Readonly<Record<Framing, string>> = {
  "connect-json": "application/json",
  "connect-proto": "application/proto",
  "connect-stream-json": "application/connect+json",
  "connect-stream-proto": "application/connect+proto",
  grpc: "application/grpc+proto",
  "grpc-web": "application/grpc-web+proto",
  "grpc-web-text": "application/grpc-web-text",
};

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

/** An answer as the scenarios look at it. */
export type Answer =
  | {
      readonly kind: "response";
      readonly status: number;
      readonly headers: Readonly<IncomingHttpHeaders>;
      readonly trailers: Readonly<IncomingHttpHeaders>;
      readonly body: Buffer;
    }
  | { readonly kind: "reset"; readonly error: string }
  | { readonly kind: "timeout" };

/** One request to send. `headers` must hold `host` (h1) or `:authority` (h2) when wanted. */
export interface Outgoing {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
  /** Give up (and cut the request) after this long. */
  readonly timeoutMs: number;
}

/** Sends one request on a keep-alive agent (`false`: a connection of its own). Never rejects. */
export function sendH1(port: number, agent: Agent | false, r: Outgoing): Promise<Answer> {
  return new Promise((resolve) => {
    let req: ReturnType<typeof h1request> | undefined;
    const finish = settleOnce(resolve, r.timeoutMs, (): Answer => {
      req?.destroy();
      return { kind: "timeout" };
    });
    try {
      req = h1request(
        {
          host: "127.0.0.1",
          port,
          method: r.method,
          path: r.path,
          headers: r.headers,
          setHost: false,
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            finish({
              kind: "response",
              status: res.statusCode ?? 0,
              headers: res.headers,
              trailers: res.trailers,
              body: Buffer.concat(chunks),
            }),
          );
          res.on("error", (e) => finish({ kind: "reset", error: e.message }));
        },
      );
    } catch (e) {
      finish({ kind: "reset", error: `not sent: ${(e as Error).message}` });
      return;
    }
    req.on("error", (e) => finish({ kind: "reset", error: e.message }));
    req.end(r.body);
  });
}

/** Sends one request as a stream of an open h2c session. Never rejects. */
export function sendH2(session: ClientHttp2Session, r: Outgoing): Promise<Answer> {
  return new Promise((resolve) => {
    let stream: ReturnType<ClientHttp2Session["request"]> | undefined;
    const finish = settleOnce(resolve, r.timeoutMs, (): Answer => {
      stream?.close();
      return { kind: "timeout" };
    });
    try {
      stream = session.request(
        { ":method": r.method, ":path": r.path, ":scheme": "http", ...r.headers },
        { endStream: r.body === undefined },
      );
    } catch (e) {
      finish({ kind: "reset", error: `not sent: ${(e as Error).message}` });
      return;
    }
    const s = stream;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    const answer = (): Answer => ({
      kind: "response",
      status,
      headers,
      trailers,
      body: Buffer.concat(chunks),
    });
    s.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h;
    });
    s.on("trailers", (t) => {
      trailers = t;
    });
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => finish(answer()));
    s.on("close", () =>
      finish(
        status !== 0 ? answer() : { kind: "reset", error: `stream closed (rst ${s.rstCode})` },
      ),
    );
    s.on("error", (e) => finish({ kind: "reset", error: e.message }));
    if (r.body !== undefined) s.end(r.body);
  });
}

/**
 * `n` h2c sessions to `port`: request `i` goes on session `i % n`, and a session that closed
 * (a GOAWAY, an error) is replaced by a fresh one.
 */
export function h2Sessions(port: number, n: number) {
  const sessions: (ClientHttp2Session | undefined)[] = [];
  return {
    get(i: number): ClientHttp2Session {
      const k = i % n;
      const s = sessions[k];
      if (s !== undefined && !s.closed && !s.destroyed) return s;
      const fresh = h2connect(`http://127.0.0.1:${port}`);
      fresh.on("error", () => {});
      fresh.on("goaway", () => fresh.close());
      sessions[k] = fresh;
      return fresh;
    },
    destroy(): void {
      for (const s of sessions) s?.destroy();
    },
  };
}

/**
 * An authorised GetInfo, timed: Connect JSON over HTTP/1.1 on `agent` (`false`: a fresh
 * connection), or gRPC over the h2c `session`. The outcome is `ok` or what went wrong.
 */
export async function getInfoCall(
  d: TestDaemon,
  via: { readonly agent: Agent | false } | { readonly session: ClientHttp2Session },
  timeoutMs: number,
): Promise<{ outcome: string; ms: number }> {
  const t0 = performance.now();
  const authorization = `Bearer ${d.token}`;
  if ("agent" in via) {
    const a = await sendH1(d.httpPort, via.agent, {
      method: "POST",
      path: GET_INFO_PATH,
      headers: { authorization, "content-type": "application/json", host: d.httpAddr },
      body: "{}",
      timeoutMs,
    });
    return { outcome: outcomeOf(a, "connect-json"), ms: performance.now() - t0 };
  }
  const a = await sendH2(via.session, {
    method: "POST",
    path: GET_INFO_PATH,
    headers: {
      authorization,
      "content-type": "application/grpc+proto",
      te: "trailers",
      ":authority": d.grpcAddr,
    },
    body: envelope(0, new Uint8Array()),
    timeoutMs,
  });
  return { outcome: outcomeOf(a, "grpc"), ms: performance.now() - t0 };
}

/** The Connect code name (`invalid_argument`) of a code or gRPC status number. */
export function codeName(n: number): string {
  if (n === 0) return "ok";
  return (Code[n] ?? `grpc-${n}`).replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function header(h: Readonly<IncomingHttpHeaders>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** grpc-status from the headers, the trailers or a gRPC-web trailer frame of the body. */
function grpcStatusOf(a: Extract<Answer, { kind: "response" }>, body: Uint8Array) {
  const fromHeaders = header(a.headers, "grpc-status") ?? header(a.trailers, "grpc-status");
  if (fromHeaders !== undefined) return Number(fromHeaders);
  for (const e of envelopes(body)) {
    if ((e.flags & 0x80) === 0) continue;
    const m = /grpc-status:\s*(\d+)/i.exec(Buffer.from(e.data).toString("latin1"));
    if (m?.[1] !== undefined) return Number(m[1]);
  }
  return undefined;
}

/**
 * The outcome of an RPC answer, read the way its framing puts it: `ok`, a Connect code name, or
 * `http-<status>` when the answer carries no RPC status (a refusal by Node or the router).
 * Non-responses are `reset` or `timeout`.
 */
export function outcomeOf(a: Answer, framing: Framing | undefined): string {
  if (a.kind !== "response") return a.kind;
  const json = (): string | undefined => {
    try {
      const v = JSON.parse(a.body.toString("utf8")) as { code?: unknown };
      return typeof v.code === "string" ? v.code : undefined;
    } catch {
      return undefined;
    }
  };
  switch (framing) {
    case undefined:
    case "connect-json":
    case "connect-proto":
      if (a.status === 200) return "ok";
      return json() ?? `http-${a.status}`;
    case "connect-stream-json":
    case "connect-stream-proto": {
      if (a.status !== 200) return json() ?? `http-${a.status}`;
      const end = envelopes(a.body).find((e) => (e.flags & 0x02) !== 0);
      if (end === undefined) return "ok";
      try {
        const v = JSON.parse(Buffer.from(end.data).toString("utf8")) as {
          error?: { code?: string };
        };
        return v.error?.code ?? "ok";
      } catch {
        return "unparsable-end-stream";
      }
    }
    case "grpc":
    case "grpc-web":
    case "grpc-web-text": {
      const body =
        framing === "grpc-web-text"
          ? Buffer.from(a.body.toString("latin1").replace(/[^A-Za-z0-9+/=]/g, ""), "base64")
          : a.body;
      const s = grpcStatusOf(a, body);
      if (a.status !== 200) return json() ?? (s === undefined ? `http-${a.status}` : codeName(s));
      return s === undefined ? "no-grpc-status" : codeName(s);
    }
  }
}

/** Codes that mean the daemon failed, not the caller: a `5xx` of Connect's mapping. */
export const SERVER_FAULT_CODES = new Set(["internal", "unknown", "data_loss"]);

/** A header field of a raw h2c request, in order; duplicates allowed. */
export type RawH2Header = readonly [name: string, value: string];

/** The answer of a raw h2c exchange. */
export type RawH2Outcome =
  | { readonly kind: "response"; readonly status: number; readonly body: string }
  | { readonly kind: "reset"; readonly detail: string }
  | { readonly kind: "timeout" };

function hpackLength(n: number): number[] {
  if (n < 127) return [n];
  const out = [127];
  let rest = n - 127;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  out.push(rest);
  return out;
}

/** One HTTP/2 frame: the 9-byte header, then `payload`. */
export function h2Frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** What an h2c client sends first: the connection preface and an empty SETTINGS frame. */
export const H2_PREFACE = Buffer.concat([
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
  h2Frame(0x4, 0, 0),
]);

/** A frame as {@link readH2Frames} hands it on. */
export interface H2Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

/**
 * Reads the frames of a raw h2c connection as they arrive, acknowledges SETTINGS and PING as a
 * polite client does, and hands every frame to `onFrame`.
 */
export function readH2Frames(socket: Socket, onFrame: (f: H2Frame) => void): void {
  let buf = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const f: H2Frame = {
        type: buf[3] ?? 0,
        flags: buf[4] ?? 0,
        stream: buf.readUInt32BE(5) & 0x7fffffff,
        payload: buf.subarray(9, 9 + len),
      };
      buf = buf.subarray(9 + len);
      const ackable = f.type === 0x4 || f.type === 0x6;
      if (ackable && (f.flags & 0x1) === 0) {
        socket.write(h2Frame(f.type, 0x1, 0, f.type === 0x6 ? f.payload : undefined));
      }
      onFrame(f);
    }
  });
}

/** Huffman codes of the digits (RFC 7541, appendix B), enough to read a `:status` value. */
const DIGIT_CODES: readonly (readonly [bits: string, digit: string])[] = [
  ["00000", "0"],
  ["00001", "1"],
  ["00010", "2"],
  ["011001", "3"],
  ["011010", "4"],
  ["011011", "5"],
  ["011100", "6"],
  ["011101", "7"],
  ["011110", "8"],
  ["011111", "9"],
];

/** `:status` from the first field of a response header block, or undefined. */
function statusOf(block: Uint8Array): number | undefined {
  let at = 0;
  // Dynamic table size updates may come first.
  while (at < block.length && ((block[at] ?? 0) & 0xe0) === 0x20) at++;
  const first = block[at] ?? 0;
  const STATIC: Record<number, number> = {
    8: 200,
    9: 204,
    10: 206,
    11: 304,
    12: 400,
    13: 404,
    14: 500,
  };
  if (first & 0x80) return STATIC[first & 0x7f];
  const index = first & 0x40 ? first & 0x3f : first & 0x0f;
  if (index < 8 || index > 14) return undefined;
  const lenByte = block[at + 1] ?? 0;
  const len = lenByte & 0x7f;
  const value = block.subarray(at + 2, at + 2 + len);
  if ((lenByte & 0x80) === 0) return Number(Buffer.from(value).toString("latin1"));
  let bits = "";
  for (const b of value) bits += b.toString(2).padStart(8, "0");
  let digits = "";
  while (bits.length > 0) {
    const code = DIGIT_CODES.find(([c]) => bits.startsWith(c));
    if (code === undefined) break;
    digits += code[1];
    bits = bits.slice(code[0].length);
  }
  return digits.length === 3 ? Number(digits) : undefined;
}

/**
 * One request over a fresh h2c connection, with the header block encoded by hand (HPACK
 * literals, no Huffman), so any field may repeat. Reads the response's `:status` and body.
 */
export function rawH2Exchange(
  port: number,
  fields: readonly RawH2Header[],
  body?: string,
  msecs = 5_000,
): Promise<RawH2Outcome> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    let status: number | undefined;
    let data = "";
    const answer = (): RawH2Outcome => {
      if (status !== undefined) return { kind: "response", status, body: data };
      // A refusal is JSON with a known code even when `:status` could not be decoded.
      const code = /"code":"([a-z_]+)"/.exec(data)?.[1];
      const byCode: Record<string, number> = { unauthenticated: 401, permission_denied: 403 };
      const s = code === undefined ? undefined : byCode[code];
      return s === undefined
        ? { kind: "reset", detail: "no response" }
        : { kind: "response", status: s, body: data };
    };
    const finish = settleOnce(
      resolve,
      msecs,
      (): RawH2Outcome => (status === undefined ? { kind: "timeout" } : answer()),
      () => socket.destroy(),
    );
    socket.on("connect", () => {
      const block: number[] = [];
      for (const [name, value] of fields) {
        block.push(0x00, ...hpackLength(Buffer.byteLength(name)), ...Buffer.from(name));
        block.push(...hpackLength(Buffer.byteLength(value)), ...Buffer.from(value));
      }
      socket.write(
        Buffer.concat([
          H2_PREFACE,
          h2Frame(0x1, 0x4 | (body === undefined ? 0x1 : 0), 1, Uint8Array.from(block)),
          ...(body === undefined ? [] : [h2Frame(0x0, 0x1, 1, Buffer.from(body))]),
        ]),
      );
    });
    readH2Frames(socket, ({ type, flags, stream, payload }) => {
      if (stream !== 1) {
        if (type === 0x7)
          finish(status === undefined ? { kind: "reset", detail: "goaway" } : answer());
        return;
      }
      if (type === 0x1) status ??= statusOf(payload);
      if (type === 0x0) data += payload.toString("utf8");
      if (type === 0x3) {
        const rst: RawH2Outcome = { kind: "reset", detail: `rst ${payload.readUInt32BE(0)}` };
        finish(status === undefined ? rst : answer());
      } else if ((type === 0x0 || type === 0x1) && (flags & 0x1) !== 0) finish(answer());
    });
    socket.on("error", () => finish(answer()));
    socket.on("close", () => finish(answer()));
  });
}
