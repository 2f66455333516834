/**
 * The wire as the scenarios speak it: the daemon's RPC paths, the Connect, gRPC and gRPC-web
 * framings, one request over a kept-alive HTTP/1.1 agent or a shared h2c session with a bound on
 * its time, a pool of h2c sessions, an authorised GetInfo, the RPC outcome of an answer in any
 * of the protocols. (The 5-byte envelope lives in `test/helpers/http.ts`, raw h2c frames and
 * exchanges in `test/helpers/raw-h2.ts`.)
 *
 * @module
 */

import { type Agent, request as h1request } from "node:http";
import {
  type ClientHttp2Session,
  connect as h2connect,
  type IncomingHttpHeaders,
} from "node:http2";
import { performance } from "node:perf_hooks";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import type { TestDaemon } from "../helpers/daemon.js";
import { envelope, envelopes, GET_INFO_PATH } from "../helpers/http.js";
import { settleOnce } from "../helpers/raw-h2.js";

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
