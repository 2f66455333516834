import assert from "node:assert/strict";
import { request as h1request } from "node:http";
import { connect as h2connect } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { clientFor, codeOf } from "../helpers/clients.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { envelope, envelopes, GET_INFO_PATH, rawHttp1, rawHttp2 } from "../helpers/http.js";
import { type RawH2Header, rawH2Exchange } from "../helpers/raw-h2.js";

const WATCH = "/com.seed.documents.v3alpha.Documents/WatchDocuments";
const GET_DOCUMENT = "/com.seed.documents.v3alpha.Documents/GetDocument";
/** Field 1, length-delimited, with a length running past the end: protobuf-es' "premature EOF". */
const BAD_PROTO = new Uint8Array([0x0a, 0xff, 0xff]);
/** The fixed message of an undecodable request. */
const MALFORMED = "malformed request";
/** Words of the library's own messages that must never reach a client. */
const LIBRARY_TEXT = /parse binary|premature|JSON|position|cannot decode|decompress|timeout value/i;
const MAX_REQUEST_BYTES = 4096;

let d: TestDaemon;
before(async () => {
  d = await startDaemon({
    args: ["--h2-idle-timeout-ms", "500", "--max-request-bytes", String(MAX_REQUEST_BYTES)],
  });
});
after(async () => {
  await d.stop();
});

/** An HTTP/1.1 POST whose body is read back as bytes. */
function post(path: string, headers: Record<string, string>, body: Uint8Array | string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
    (resolve, reject) => {
      const req = h1request(
        {
          host: "127.0.0.1",
          port: d.httpPort,
          method: "POST",
          path,
          headers: { authorization: `Bearer ${d.token}`, ...headers },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    },
  );
}

/** Connect unary error of a response: status, code and message. */
function connectError(res: { status: number; body: Buffer }) {
  const json = JSON.parse(res.body.toString()) as { code: string; message: string };
  return { status: res.status, code: json.code, message: json.message };
}

/**
 * Writes `head` (and later `body`) on a raw HTTP/1.1 connection and collects what comes back,
 * until the server closes or `until` matches.
 */
function rawExchange(
  port: number,
  head: string,
  opts: { bodyAfterContinue?: string; until?: RegExp } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1", () => socket.write(head));
    let out = "";
    let sentBody = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, 5_000);
    socket.on("data", (chunk: Buffer) => {
      out += chunk.toString("latin1");
      if (!sentBody && opts.bodyAfterContinue !== undefined && /^HTTP\/1\.1 100 /.test(out)) {
        sentBody = true;
        socket.write(opts.bodyAfterContinue);
      }
      if (opts.until?.test(out)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(out);
      }
    });
    socket.on("error", reject);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** The header fields of a Connect JSON GetInfo over h2c, with these `authorization` values. */
function h2GetInfoFields(authorizations: readonly string[]): RawH2Header[] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", `127.0.0.1:${d.grpcPort}`],
    [":path", GET_INFO_PATH],
    ["content-type", "application/json"],
    ...authorizations.map((a): RawH2Header => ["authorization", a]),
  ];
}

describe("a malformed request body is invalid_argument with a fixed message", () => {
  test("Connect application/proto", async () => {
    const res = await post(GET_INFO_PATH, { "content-type": "application/proto" }, BAD_PROTO);
    assert.deepEqual(connectError(res), {
      status: 400,
      code: "invalid_argument",
      message: MALFORMED,
    });
  });

  test("Connect JSON: not JSON, and a field of the wrong type", async () => {
    const notJson = await post(
      GET_INFO_PATH,
      { "content-type": "application/json" },
      `{not json${"x".repeat(500)}`,
    );
    assert.deepEqual(connectError(notJson), {
      status: 400,
      code: "invalid_argument",
      message: MALFORMED,
    });
    const wrongType = await post(
      GET_DOCUMENT,
      { "content-type": "application/json" },
      JSON.stringify({ account: ["y".repeat(500)] }),
    );
    assert.deepEqual(connectError(wrongType), {
      status: 400,
      code: "invalid_argument",
      message: MALFORMED,
    });
    assert.doesNotMatch(wrongType.body.toString(), /yyyy/);
  });

  test("Connect: a gzip body that does not inflate, and a bad timeout header", async () => {
    const gz = gzipSync(Buffer.from("{}"));
    const broken = Buffer.concat([
      gz.subarray(0, 10),
      Buffer.from("garbage-garbage"),
      gz.subarray(10),
    ]);
    const res = await post(
      GET_INFO_PATH,
      { "content-type": "application/json", "content-encoding": "gzip" },
      broken,
    );
    assert.equal(connectError(res).code, "invalid_argument");
    assert.doesNotMatch(res.body.toString(), LIBRARY_TEXT);
    const timeout = await post(
      GET_INFO_PATH,
      { "content-type": "application/json", "connect-timeout-ms": `1${"z".repeat(300)}` },
      "{}",
    );
    assert.deepEqual(connectError(timeout), {
      status: 400,
      code: "invalid_argument",
      message: MALFORMED,
    });
  });

  test("Connect streaming: the end-of-stream error", async () => {
    const res = await post(
      WATCH,
      { "content-type": "application/connect+proto" },
      envelope(0, BAD_PROTO),
    );
    assert.equal(res.status, 200);
    const end = envelopes(res.body).find((e) => (e.flags & 0b10) !== 0);
    assert.ok(end, "an end-of-stream message");
    const json = JSON.parse(Buffer.from(end.data).toString()) as {
      error?: { code: string; message: string };
    };
    assert.deepEqual(json.error, { code: "invalid_argument", message: MALFORMED });
  });

  test("gRPC-web: the trailer", async () => {
    for (const path of [GET_INFO_PATH, WATCH]) {
      const res = await post(
        path,
        { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
        envelope(0, BAD_PROTO),
      );
      const trailer = envelopes(res.body).find((e) => (e.flags & 0x80) !== 0);
      assert.ok(trailer, `a trailer (${path})`);
      const text = Buffer.from(trailer.data).toString();
      assert.match(text, /grpc-status: 3\r\n/, path);
      assert.match(text, /grpc-message: malformed%20request\r\n/, path);
      assert.doesNotMatch(decodeURIComponent(text), LIBRARY_TEXT, path);
    }
  });

  test("gRPC (grpc-js over h2c): INVALID_ARGUMENT", async () => {
    const client = new grpc.Client(d.grpcAddr, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${d.token}`);
    try {
      for (const path of [GET_INFO_PATH, WATCH]) {
        const err = await new Promise<grpc.ServiceError | null>((resolve) => {
          if (path === WATCH) {
            const call = client.makeServerStreamRequest(
              path,
              () => Buffer.from(BAD_PROTO),
              (b: Buffer) => b,
              {},
              md,
            );
            call.on("data", () => {});
            call.on("error", (e: grpc.ServiceError) => resolve(e));
            call.on("end", () => resolve(null));
            return;
          }
          client.makeUnaryRequest(
            path,
            () => Buffer.from(BAD_PROTO),
            (b: Buffer) => b,
            {},
            md,
            (e) => resolve(e),
          );
        });
        assert.equal(err?.code, grpc.status.INVALID_ARGUMENT, path);
        assert.equal(err?.details, MALFORMED, path);
      }
    } finally {
      client.close();
    }
  });

  test("the daemon's own errors keep their text", async () => {
    const res = await post(
      GET_DOCUMENT,
      { "content-type": "application/json" },
      JSON.stringify({ account: "" }),
    );
    const err = connectError(res);
    assert.equal(err.code, "invalid_argument");
    assert.notEqual(err.message, MALFORMED);
    assert.match(err.message, /account/);
  });
});

test("an error message quotes a caller's key name cut to 128 characters", async () => {
  const res = await post(
    "/com.seed.daemon.v1alpha.Daemon/SignData",
    { "content-type": "application/json" },
    JSON.stringify({ signingKeyName: "n".repeat(2_000), data: "AQ==" }),
  );
  const err = connectError(res);
  assert.equal(err.code, "not_found");
  assert.equal(err.message, `no key named "${"n".repeat(128)}…"`);
});

test("a PairOrigin error quotes the caller's origin cut to 128 characters", async () => {
  const scheme = `x${"y".repeat(1_000)}`;
  const res = await post(
    "/com.seed.daemon.v1alpha.Daemon/PairOrigin",
    { "content-type": "application/json" },
    JSON.stringify({ origin: `${scheme}://a.example`, label: "l" }),
  );
  const err = connectError(res);
  assert.equal(err.code, "invalid_argument", err.message);
  assert.ok(err.message.includes(`"x${"y".repeat(127)}…"`), err.message);
  assert.ok(!err.message.includes("y".repeat(128)));
});

describe("more than one Authorization header is refused", () => {
  const wrong = `Bearer ${"x".repeat(43)}`;

  test("HTTP/1.1, in either order", async () => {
    const good = `Bearer ${d.token}`;
    for (const pair of [
      [good, wrong],
      [wrong, good],
      [good, good],
    ]) {
      const head =
        `POST ${GET_INFO_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${d.httpPort}\r\n` +
        pair.map((a) => `Authorization: ${a}\r\n`).join("") +
        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
      const out = await rawExchange(d.httpPort, head);
      assert.match(out, /^HTTP\/1\.1 401 /, pair.map((a) => a.slice(7, 12)).join(" then "));
    }
    const one = await rawExchange(
      d.httpPort,
      `POST ${GET_INFO_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${d.httpPort}\r\nAuthorization: ${good}\r\n` +
        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert.match(one, /^HTTP\/1\.1 200 /);
  });

  test("HTTP/2, in either order", async () => {
    const good = `Bearer ${d.token}`;
    const one = await rawH2Exchange(d.grpcPort, h2GetInfoFields([good]), "{}");
    assert.equal(one.kind, "response", "the raw client works");
    assert.equal(JSON.parse(one.body).state, "ACTIVE", "the raw client works");
    for (const pair of [
      [good, wrong],
      [wrong, good],
      [good, good],
    ]) {
      const answer = await rawH2Exchange(d.grpcPort, h2GetInfoFields(pair), "{}");
      assert.equal(answer.kind, "response");
      assert.equal(JSON.parse(answer.body).code, "unauthenticated");
    }
  });
});

describe("HTTP/2 :authority and host must agree", () => {
  test("a disagreeing host header is 403; an agreeing one passes", async () => {
    const p = d.grpcPort;
    const disagree = await rawHttp2({
      port: p,
      path: "/health",
      headers: { host: "evil.example:1" },
    });
    assert.equal(disagree.status, 403);
    const otherLoopback = await rawHttp2({
      port: p,
      path: "/health",
      headers: { host: `localhost:${p}` },
    });
    assert.equal(otherLoopback.status, 403, "two allowed names that differ are still ambiguous");
    const same = await rawHttp2({ port: p, path: "/health", headers: { host: `127.0.0.1:${p}` } });
    assert.equal(same.status, 200);
    const cased = await rawHttp2({
      port: p,
      path: "/health",
      host: `localhost:${p}`,
      headers: { host: `LOCALHOST:${p}` },
    });
    assert.equal(cased.status, 200);
  });
});

describe("Expect: 100-continue", () => {
  const head = (extra: string) =>
    `POST ${GET_INFO_PATH} HTTP/1.1\r\n${extra}Content-Type: application/json\r\n` +
    "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n";

  test("HTTP/1.1: a refused request gets its answer without 100 Continue", async () => {
    const p = d.httpPort;
    const auth = `Authorization: Bearer ${d.token}\r\n`;
    for (const [extra, status] of [
      [`Host: 127.0.0.1:${p}\r\n`, "401"],
      [`Host: 127.0.0.1:${p}\r\nAuthorization: Bearer ${"x".repeat(43)}\r\n`, "401"],
      [`Host: evil.example:${p}\r\n${auth}`, "403"],
      [`Host: 127.0.0.1:${p}\r\nOrigin: https://evil.example\r\n${auth}`, "403"],
    ] as const) {
      const out = await rawExchange(p, head(extra), { until: /\r\n\r\n[\s\S]*\}/ });
      assert.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), extra);
      assert.doesNotMatch(out, /100 Continue/, extra);
    }
  });

  test("HTTP/1.1: an accepted request gets 100 Continue, then its answer", async () => {
    const p = d.httpPort;
    const out = await rawExchange(
      p,
      head(`Host: 127.0.0.1:${p}\r\nAuthorization: Bearer ${d.token}\r\nConnection: close\r\n`),
      { bodyAfterContinue: "{}" },
    );
    assert.match(out, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(out, /"state":"ACTIVE"/);
  });

  for (const [name, token, status, continued] of [
    ["refused", undefined, 401, false],
    ["accepted", "good", 200, true],
  ] as const) {
    test(`HTTP/2: ${name} request, 100 Continue ${continued ? "first" : "never"}`, async () => {
      const session = h2connect(`http://127.0.0.1:${d.grpcPort}`);
      try {
        const result = await new Promise<{ status: number; continued: boolean }>(
          (resolve, reject) => {
            const headers: Record<string, string> = {
              ":method": "POST",
              ":path": GET_INFO_PATH,
              "content-type": "application/json",
              expect: "100-continue",
            };
            if (token !== undefined) headers.authorization = `Bearer ${d.token}`;
            const stream = session.request(headers, { endStream: false });
            let sawContinue = false;
            stream.on("continue", () => {
              sawContinue = true;
              stream.end("{}");
            });
            stream.on("response", (h) => {
              const s = Number(h[":status"]);
              stream.resume();
              stream.on("end", () => resolve({ status: s, continued: sawContinue }));
              if (!sawContinue) stream.close();
            });
            stream.on("error", reject);
          },
        );
        assert.deepEqual(result, { status, continued });
      } finally {
        session.destroy();
      }
    });
  }
});

describe("limits", () => {
  test("HTTP/1.1: headers over Node's maxHeaderSize get 431", async () => {
    const out = await rawExchange(
      d.httpPort,
      `GET /health HTTP/1.1\r\nHost: 127.0.0.1:${d.httpPort}\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    assert.match(out, /^HTTP\/1\.1 431 /);
  });

  test("HTTP/2: a header list over the same limit gets 431", async () => {
    const big = await rawHttp2({
      port: d.grpcPort,
      path: "/health",
      headers: { "x-big": "a".repeat(20_000) },
    });
    assert.equal(big.status, 431);
    assert.equal(JSON.parse(big.body).code, "resource_exhausted");
    const fine = await rawHttp2({
      port: d.grpcPort,
      path: "/health",
      headers: { "x-big": "a".repeat(8_000) },
    });
    assert.equal(fine.status, 200);
  });

  test("HTTP/1.1: a refused request's small body is dropped unread and the connection goes on", async () => {
    const p = d.httpPort;
    const body = '{"not":"read"}';
    const refused =
      `POST ${GET_INFO_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n` +
      `Authorization: Bearer ${"w".repeat(43)}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`;
    const health = `GET /health HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`;
    // Both on one connection, the second written before the first is answered.
    const out = await rawExchange(p, refused + refused + health, { until: /"status":"ok"/ });
    const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    assert.deepEqual(statuses, ["401", "401", "200"]);
  });

  test("HTTP/1.1: a refused request's chunked body past 64 KiB ends the connection", async () => {
    const p = d.httpPort;
    const socket = netConnect(p, "127.0.0.1");
    let out = "";
    socket.on("data", (c: Buffer) => {
      out += c.toString("latin1");
    });
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
    socket.write(
      `POST ${GET_INFO_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n` +
        `Authorization: Bearer ${"w".repeat(43)}\r\nContent-Type: application/json\r\n` +
        "Transfer-Encoding: chunked\r\n\r\n",
    );
    const chunk = `2000\r\n${"x".repeat(0x2000)}\r\n`;
    // 8 KiB at a time up to 256 KiB: the daemon cuts the connection past 64 KiB.
    for (let i = 0; i < 32 && !socket.destroyed; i++) {
      socket.write(chunk);
      await new Promise((r) => setTimeout(r, 5));
    }
    const cut = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
    ]);
    socket.destroy();
    assert.equal(cut, true, "the daemon closed the connection");
    assert.match(out, /^HTTP\/1\.1 401 /);
  });

  test("a declared body over --max-request-bytes: 413 for plain HTTP, Connect's 429 for RPCs", async () => {
    const big = "x".repeat(MAX_REQUEST_BYTES + 1);
    const auth = { authorization: `Bearer ${d.token}` };
    for (const [method, path] of [
      ["GET", "/health"],
      ["GET", "/metrics"],
      ["POST", "/no/such/path"],
      ["GET", "/ipfs/bafkqaaa"],
    ] as const) {
      for (const send of [rawHttp1, rawHttp2]) {
        const port = send === rawHttp1 ? d.httpPort : d.grpcPort;
        const headers = { ...auth, "content-length": String(big.length) };
        const res = await send({ port, method, path, headers, body: big });
        assert.equal(res.status, 413, `${method} ${path} on ${send.name}`);
        assert.equal(JSON.parse(res.body).code, "resource_exhausted");
      }
    }
    const small = await rawHttp1({
      port: d.httpPort,
      method: "POST",
      path: "/no/such/path",
      headers: auth,
      body: "x",
    });
    assert.equal(small.status, 404);
    const rpc = await rawHttp1({
      port: d.httpPort,
      method: "POST",
      path: GET_INFO_PATH,
      headers: { ...auth, "content-type": "application/json" },
      body: big,
    });
    assert.equal(rpc.status, 429);
    assert.equal(JSON.parse(rpc.body).code, "resource_exhausted");
  });

  test("HTTP/2: a session that sends no request is closed after the idle bound", async () => {
    const started = Date.now();
    const closed = await new Promise<boolean>((resolve) => {
      const socket = netConnect(d.grpcPort, "127.0.0.1");
      socket.resume();
      socket.on("close", () => resolve(true));
      socket.on("error", () => {});
      setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, 5_000).unref();
    });
    assert.equal(closed, true);
    assert.ok(Date.now() - started >= 400, "not before the bound");
  });

  test("HTTP/2: a session is kept while a request is in progress and closed once idle", async () => {
    const session = h2connect(`http://127.0.0.1:${d.grpcPort}`);
    const closed = new Promise<number>((resolve) => {
      session.once("close", () => resolve(Date.now()));
      setTimeout(() => resolve(Number.POSITIVE_INFINITY), 6_000).unref();
    });
    session.on("error", () => {});
    // The RPC waits for its body, sent only after twice the bound: the stream is in progress.
    const stream = session.request(
      {
        ":method": "POST",
        ":path": GET_INFO_PATH,
        authorization: `Bearer ${d.token}`,
        "content-type": "application/json",
      },
      { endStream: false },
    );
    const status = new Promise<number>((resolve, reject) => {
      stream.on("response", (h) => {
        stream.resume();
        stream.on("end", () => resolve(Number(h[":status"])));
      });
      stream.on("error", reject);
    });
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(session.closed || session.destroyed, false, "still open after 1 s in use");
    stream.end("{}");
    assert.equal(await status, 200);
    const ended = Date.now();
    const closedAt = await closed;
    assert.ok(closedAt - ended >= 300, "closed only after the idle bound");
    assert.ok(closedAt - ended < 5_000, "closed soon after the idle bound");
    session.destroy();
  });
});

describe("--max-connections", () => {
  let small: TestDaemon;
  before(async () => {
    small = await startDaemon({ args: ["--max-connections", "2"] });
  });
  after(async () => {
    await small.stop();
  });

  test("connections past the cap are dropped on arrival and counted in /metrics", async () => {
    for (const [port, listener] of [
      [small.httpPort, "http"],
      [small.grpcPort, "grpc"],
    ] as const) {
      const held: Socket[] = [];
      for (let i = 0; i < 2; i++) {
        const s = netConnect(port, "127.0.0.1");
        s.on("error", () => {});
        await new Promise((r) => s.once("connect", r));
        held.push(s);
      }
      // Give the server a moment to count both before the third arrives.
      await new Promise((r) => setTimeout(r, 100));
      const dropped = await new Promise<boolean>((resolve) => {
        const s = netConnect(port, "127.0.0.1");
        s.on("error", () => {});
        s.on("close", () => resolve(true));
        setTimeout(() => {
          s.destroy();
          resolve(false);
        }, 2_000).unref();
      });
      assert.equal(dropped, true, listener);
      for (const s of held) s.destroy();
      await new Promise((r) => setTimeout(r, 100));
    }
    const metrics = await rawHttp1({
      port: small.httpPort,
      path: "/metrics",
      headers: { authorization: `Bearer ${small.token}` },
    });
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /seed_daemon_connections_refused_total\{listener="http"\} 1/);
    assert.match(metrics.body, /seed_daemon_connections_refused_total\{listener="grpc"\} 1/);
    // Below the cap again, the listeners serve as before.
    const info = await clientFor(Daemon, "grpc", small, small.token).getInfo({});
    assert.ok(info.version !== "");
    assert.equal(
      await codeOf(clientFor(Daemon, "connect", small, undefined).getInfo({})),
      Code.Unauthenticated,
    );
  });
});
