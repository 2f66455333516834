import assert from "node:assert/strict";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import {
  Code,
  ConnectError,
  createClient,
  createConnectRouter,
  createRouterTransport,
} from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import Database from "better-sqlite3";
import { DomainError } from "../../src/errors.js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { createLogger } from "../../src/logger.js";
import { Metrics } from "../../src/server/metrics.js";
import {
  errorAndMetricsInterceptor,
  guardLibraryErrors,
  libraryError,
} from "../../src/server/rpc-interceptor.js";
import { envelope, envelopes } from "../helpers/http.js";

const WATCH = "/com.seed.documents.v3alpha.Documents/WatchDocuments";

/** A Documents.WatchDocuments handler that yields `before` messages, then does `then`. */
function setup(then: "end" | "domain" | "crash" | "wait" | "full", release?: Promise<void>) {
  const metrics = new Metrics();
  const logged: string[] = [];
  const logger = createLogger("error");
  logger.error = ((obj: unknown, msg: string) => {
    logged.push(`${msg} ${JSON.stringify(obj)}`);
  }) as typeof logger.error;
  const transport = createRouterTransport(
    (router) => {
      router.service(Documents, {
        async *watchDocuments() {
          yield { account: "first" };
          if (then === "wait") await release;
          if (then === "domain") throw new DomainError("not_found", "document not found");
          if (then === "crash") throw new Error("secret-bearing library text");
          if (then === "full") {
            const db = new Database(":memory:");
            db.exec("CREATE TABLE t (x BLOB)");
            db.pragma("max_page_count = 4");
            try {
              for (;;) db.prepare("INSERT INTO t VALUES (?)").run(Buffer.alloc(4096));
            } finally {
              db.close();
            }
          }
          yield { account: "second" };
        },
      });
      router.service(Daemon, {
        getInfo: () => {
          throw new DomainError("failed_precondition", "not now");
        },
      });
    },
    { router: { interceptors: [errorAndMetricsInterceptor(metrics, logger)] } },
  );
  return { metrics, logged, client: createClient(Documents, transport), transport };
}

async function drain(client: ReturnType<typeof setup>["client"]) {
  const seen: string[] = [];
  try {
    for await (const m of client.watchDocuments({})) seen.push(m.account);
    return { seen, code: "ok" };
  } catch (err) {
    return {
      seen,
      code: Code[ConnectError.from(err).code],
      message: ConnectError.from(err).rawMessage,
    };
  }
}

async function counted(metrics: Metrics, method: string) {
  const { values } = await metrics.requests.get();
  return values.filter((v) => v.labels.method === method).map((v) => [v.labels.code, v.value]);
}

test("a DomainError thrown mid-stream keeps its code, and the metric says so", async () => {
  const { client, metrics } = setup("domain");
  const r = await drain(client);
  assert.deepEqual(r, { seen: ["first"], code: "NotFound", message: "document not found" });
  assert.deepEqual(await counted(metrics, WATCH), [["NotFound", 1]]);
});

test("an unexpected error mid-stream is internal with no detail, and logged once without its message", async () => {
  const { client, metrics, logged } = setup("crash");
  const r = await drain(client);
  assert.deepEqual(r, { seen: ["first"], code: "Internal", message: "internal error" });
  assert.deepEqual(await counted(metrics, WATCH), [["Internal", 1]]);
  assert.equal(logged.length, 1);
  assert.doesNotMatch(logged[0] ?? "", /secret-bearing/);
});

test("a full disk mid-stream is resource_exhausted with a fixed message, logged with its code only", async () => {
  const { client, metrics, logged } = setup("full");
  const r = await drain(client);
  assert.deepEqual(r, {
    seen: ["first"],
    code: "ResourceExhausted",
    message: "the daemon's disk is full: nothing was written",
  });
  assert.deepEqual(await counted(metrics, WATCH), [["ResourceExhausted", 1]]);
  assert.deepEqual(logged, [
    `a write to the data dir failed {"method":"${WATCH}","cause":"SQLITE_FULL"}`,
  ]);
});

test("a stream that ends normally counts ok; its latency is recorded only when it ends", async () => {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const { client, metrics } = setup("wait", gate);
  const it = client.watchDocuments({})[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.account, "first");
  const histogram = async () =>
    (await metrics.latency.get()).values.find(
      (v) => v.metricName?.endsWith("_count") && v.labels.method === WATCH,
    )?.value ?? 0;
  assert.equal(await histogram(), 0, "still open: no latency yet");
  release();
  assert.equal((await it.next()).value?.account, "second");
  assert.equal((await it.next()).done, true);
  assert.equal(await histogram(), 1);
  assert.deepEqual(await counted(metrics, WATCH), [["ok", 1]]);
});

test("unary errors are mapped as before", async () => {
  const { transport, metrics } = setup("end");
  const daemon = createClient(Daemon, transport);
  await assert.rejects(
    daemon.getInfo({}),
    (e) => ConnectError.from(e).code === Code.FailedPrecondition,
  );
  assert.deepEqual(await counted(metrics, "/com.seed.daemon.v1alpha.Daemon/GetInfo"), [
    ["FailedPrecondition", 1],
  ]);
});

// ---- guardLibraryErrors: errors the Connect library raises itself never carry its text.

/** Field 1, length-delimited, with a length past the end: protobuf-es' "premature EOF". */
const BAD_PROTO = new Uint8Array([0x0a, 0xff, 0xff]);
const GET_INFO = "/com.seed.daemon.v1alpha.Daemon/GetInfo";

/** The guarded handlers of a router serving GetInfo (`info` decides) and WatchDocuments. */
function guardedRouter(info: () => unknown) {
  const metrics = new Metrics();
  const router = createConnectRouter({
    interceptors: [errorAndMetricsInterceptor(metrics, createLogger("silent"))],
    // As connect-node's adapter sets it, so long error texts go out compressed.
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  router.service(Daemon, { getInfo: info as never });
  router.service(Documents, {
    async *watchDocuments() {
      yield { account: "first" };
    },
  });
  guardLibraryErrors(router.handlers);
  const handler = (path: string) => {
    const h = router.handlers.find((x) => x.requestPath === path);
    assert.ok(h, path);
    return h;
  };
  /** Calls `path` with the given headers and body; returns status, headers, body and trailers. */
  return async (path: string, header: Record<string, string>, body: Uint8Array | string) => {
    const res = await handler(path)({
      httpVersion: "2.0",
      url: `http://127.0.0.1${path}`,
      method: "POST",
      header: new Headers(header),
      body: createAsyncIterable([typeof body === "string" ? new TextEncoder().encode(body) : body]),
      signal: new AbortController().signal,
    });
    const chunks: Uint8Array[] = [];
    for await (const c of res.body ?? createAsyncIterable<Uint8Array>([])) chunks.push(c);
    return {
      status: res.status,
      header: res.header,
      body: Buffer.concat(chunks),
      trailer: res.trailer,
    };
  };
}

/** The enveloped messages of a body, inflated when flagged compressed (gzip). */
function envelopesOf(body: Buffer): Array<{ flags: number; data: Buffer }> {
  return envelopes(body).map(({ flags, data }) => ({
    flags,
    data: flags & 1 ? gunzipSync(data) : Buffer.from(data),
  }));
}

const healthy = () => ({ version: "1.2.3" });
const longTimeout = `1${"z".repeat(3000)}`;

test("libraryError: the library's code with a fixed message; undecodable input is invalid_argument", () => {
  const parse = new ConnectError("parse binary: premature EOF", Code.Internal);
  assert.deepEqual(
    [libraryError(parse, "input").code, libraryError(parse, "input").rawMessage],
    [Code.InvalidArgument, "malformed request"],
  );
  assert.equal(libraryError(parse, "output").code, Code.Internal);
  assert.equal(libraryError(parse, "output").rawMessage, "internal error");
  const generic = new ConnectError("internal error", Code.Internal);
  assert.equal(libraryError(generic, "input").code, Code.Internal);
  const size = new ConnectError(
    "message size 9 is larger than configured readMaxBytes 8",
    Code.ResourceExhausted,
  );
  assert.equal(libraryError(size, "input").rawMessage, "message too large");
  assert.equal(libraryError(new Error("x"), "input").code, Code.Internal);
  const timeout = new ConnectError("the operation timed out", Code.DeadlineExceeded);
  assert.equal(libraryError(timeout, "output").rawMessage, "deadline exceeded");
});

test("guard, Connect unary: malformed proto and JSON bodies, a bad header; own errors kept", async () => {
  const call = guardedRouter(() => {
    throw new DomainError("failed_precondition", "not now");
  });
  for (const [header, body] of [
    [{ "content-type": "application/proto" }, BAD_PROTO],
    [{ "content-type": "application/json" }, "{nope"],
    [{ "content-type": "application/json", "connect-timeout-ms": "x".repeat(50) }, "{}"],
  ] as const) {
    const res = await call(GET_INFO, header, body);
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.body.toString()), {
      code: "invalid_argument",
      message: "malformed request",
    });
    assert.equal(res.header?.get("content-length"), String(res.body.length));
  }
  const own = await call(GET_INFO, { "content-type": "application/json" }, "{}");
  assert.deepEqual(JSON.parse(own.body.toString()), {
    code: "failed_precondition",
    message: "not now",
  });
});

test("guard, Connect unary: a gzip-compressed library error is replaced by a plain one", async () => {
  const call = guardedRouter(healthy);
  const res = await call(
    GET_INFO,
    {
      "content-type": "application/json",
      "accept-encoding": "gzip",
      "connect-timeout-ms": longTimeout,
    },
    "{}",
  );
  assert.equal(res.header?.get("content-encoding"), null);
  assert.deepEqual(JSON.parse(res.body.toString()), {
    code: "invalid_argument",
    message: "malformed request",
  });
});

test("guard: an error encoding the response is internal with no detail", async () => {
  const call = guardedRouter(() => ({ state: "not a number" }));
  const res = await call(GET_INFO, { "content-type": "application/proto" }, new Uint8Array());
  assert.equal(res.status, 500);
  assert.deepEqual(JSON.parse(res.body.toString()), {
    code: "internal",
    message: "internal error",
  });
});

test("guard, Connect streaming: the end-of-stream error", async () => {
  const call = guardedRouter(healthy);
  for (const header of [
    { "content-type": "application/connect+proto" } as Record<string, string>,
    {
      "content-type": "application/connect+proto",
      "connect-accept-encoding": "gzip",
      "connect-timeout-ms": longTimeout,
    },
  ]) {
    const res = await call(WATCH, header, envelope(0, BAD_PROTO));
    const end = envelopesOf(res.body).find((e) => (e.flags & 0b10) !== 0);
    assert.ok(end);
    assert.equal(end.flags & 1, 0, "sent uncompressed");
    assert.deepEqual(JSON.parse(end.data.toString()).error, {
      code: "invalid_argument",
      message: "malformed request",
    });
  }
  const ok = await call(
    WATCH,
    { "content-type": "application/connect+proto" },
    envelope(0, new Uint8Array()),
  );
  const messages = envelopesOf(ok.body);
  assert.equal(messages.length, 2, "one message, then the end of the stream");
  assert.deepEqual(JSON.parse(messages[1]?.data.toString() ?? ""), {});
});

test("guard, gRPC: the trailers; gRPC-web: the trailer message", async () => {
  const call = guardedRouter(healthy);
  for (const path of [GET_INFO, WATCH]) {
    const grpc = await call(path, { "content-type": "application/grpc" }, envelope(0, BAD_PROTO));
    assert.equal(grpc.trailer?.get("grpc-status"), "3", path);
    assert.equal(grpc.trailer?.get("grpc-message"), "malformed%20request", path);
    const compressed = { "grpc-accept-encoding": "gzip", "grpc-timeout": longTimeout };
    for (const extra of [{} as Record<string, string>, compressed]) {
      const web = await call(
        path,
        { "content-type": "application/grpc-web+proto", ...extra },
        envelope(0, BAD_PROTO),
      );
      const trailer = envelopesOf(web.body).find((e) => (e.flags & 0x80) !== 0);
      assert.ok(trailer, path);
      assert.equal(trailer.flags, 0x80, "sent uncompressed");
      assert.match(trailer.data.toString(), /grpc-message: malformed%20request\r\n/);
      assert.match(trailer.data.toString(), /grpc-status: 3\r\n/);
    }
  }
  const ok = await call(
    GET_INFO,
    { "content-type": "application/grpc" },
    envelope(0, new Uint8Array()),
  );
  assert.equal(ok.trailer?.get("grpc-status"), "0");
});
