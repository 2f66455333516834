import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import {
  Daemon,
  GetInfoRequestSchema,
  InfoSchema,
  State,
} from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { clientFor, codeOf, type Protocol } from "../helpers/clients.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { rawHttp1, rawHttp2 } from "../helpers/http.js";

const GET_INFO = "/com.seed.daemon.v1alpha.Daemon/GetInfo";
const PROTOCOLS: Protocol[] = ["connect", "grpc-web", "grpc"];

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d.stop();
});

function postConnect(
  token: string | undefined,
  extra: Record<string, string> = {},
  path = GET_INFO,
) {
  const headers: Record<string, string> = { "content-type": "application/json", ...extra };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return rawHttp1({ port: d.httpPort, method: "POST", path, headers, body: "{}" });
}

function grpcJsGetInfo(token: string | undefined) {
  const client = new grpc.Client(d.grpcAddr, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return new Promise<{ code: number; state?: State }>((resolve) => {
    client.makeUnaryRequest(
      GET_INFO,
      (m: ReturnType<typeof create<typeof GetInfoRequestSchema>>) =>
        Buffer.from(toBinary(GetInfoRequestSchema, m)),
      (b: Buffer) => fromBinary(InfoSchema, b),
      create(GetInfoRequestSchema),
      md,
      (err, res) => {
        client.close();
        resolve(err ? { code: err.code } : { code: 0, state: res?.state });
      },
    );
  });
}

describe("bearer token", () => {
  test("no Authorization: 401 with WWW-Authenticate and a Connect JSON body (Connect)", async () => {
    const res = await postConnect(undefined);
    assert.equal(res.status, 401);
    assert.match(String(res.headers["www-authenticate"]), /^Bearer/);
    assert.equal(JSON.parse(res.body).code, "unauthenticated");
  });

  test("no Authorization: 401 on gRPC-web", async () => {
    const res = await rawHttp1({
      port: d.httpPort,
      method: "POST",
      path: GET_INFO,
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    assert.equal(res.status, 401);
    assert.match(String(res.headers["www-authenticate"]), /^Bearer/);
  });

  test("no Authorization over h2c: 401 on Connect too", async () => {
    const res = await rawHttp2({
      port: d.grpcPort,
      method: "POST",
      path: GET_INFO,
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 401);
  });

  test("a grpc-js client over h2c gets UNAUTHENTICATED, and OK with the token", async () => {
    assert.equal((await grpcJsGetInfo(undefined)).code, grpc.status.UNAUTHENTICATED);
    assert.equal((await grpcJsGetInfo("x".repeat(43))).code, grpc.status.UNAUTHENTICATED);
    const ok = await grpcJsGetInfo(d.token);
    assert.equal(ok.code, grpc.status.OK);
    assert.equal(ok.state, State.ACTIVE);
  });

  for (const protocol of PROTOCOLS) {
    test(`${protocol}: unauthenticated without a token, GetInfo works with it`, async () => {
      const anon = clientFor(Daemon, protocol, d, undefined);
      assert.equal(await codeOf(anon.getInfo({})), Code.Unauthenticated);
      // Change the last character to one it is not (a fixed "A" matched 1 token in 64).
      const last = d.token.endsWith("A") ? "B" : "A";
      const wrong = clientFor(Daemon, protocol, d, `${d.token.slice(0, -1)}${last}`);
      assert.equal(await codeOf(wrong.getInfo({})), Code.Unauthenticated);
      const info = await clientFor(Daemon, protocol, d, d.token).getInfo({});
      assert.equal(info.state, State.ACTIVE);
      assert.equal(info.publicOnly, false);
      assert.match(info.version, /^\d+\.\d+\.\d+/);
      const started = Number(info.startTime?.seconds ?? 0n) * 1000;
      assert.ok(Math.abs(Date.now() - started) < 120_000, "start_time is recent");
    });
  }

  test("wrong, truncated, padded and empty tokens: 401", async () => {
    for (const bad of [
      "wrong-token-wrong-token-wrong-token-wrong",
      d.token.slice(0, -1),
      d.token.slice(0, 8),
      `${d.token}x`,
      `x${d.token}`,
    ]) {
      assert.equal((await postConnect(bad)).status, 401, `token variant ${bad.length}`);
    }
    for (const header of [
      "Bearer ",
      "Bearer",
      "",
      `Basic ${d.token}`,
      d.token,
      `Token ${d.token}`,
    ]) {
      const res = await postConnect(undefined, { authorization: header });
      assert.equal(res.status, 401, `header "${header.slice(0, 12)}"`);
    }
  });

  test("scheme is case-insensitive: lower-case bearer works", async () => {
    const res = await postConnect(undefined, { authorization: `bearer ${d.token}` });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).state, "ACTIVE");
    const upper = await postConnect(undefined, { authorization: `BEARER ${d.token}` });
    assert.equal(upper.status, 200);
  });

  test("a token in the query string or in a cookie is not accepted", async () => {
    for (const q of ["token", "access_token", "authorization"]) {
      const res = await postConnect(undefined, {}, `${GET_INFO}?${q}=${d.token}`);
      assert.equal(res.status, 401, q);
    }
    for (const cookie of [`token=${d.token}`, `authorization=Bearer ${d.token}`]) {
      assert.equal((await postConnect(undefined, { cookie })).status, 401);
    }
  });

  test("a server-streaming call without the token is refused; with it, it reaches the handler", async () => {
    for (const protocol of PROTOCOLS) {
      const anon = clientFor(Documents, protocol, d, undefined);
      const code = await codeOf(
        (async () => {
          for await (const _ of anon.watchDocuments({})) break;
        })(),
      );
      assert.equal(code, Code.Unauthenticated, protocol);
      const authed = clientFor(Documents, protocol, d, d.token);
      const code2 = await codeOf(
        (async () => {
          for await (const _ of authed.watchDocuments({ account: "z6Mk" })) break;
        })(),
      );
      // The handler itself refuses the malformed account.
      assert.equal(code2, Code.InvalidArgument, protocol);
    }
  });

  test("/health needs no token; /metrics needs it and counts rejections by reason", async () => {
    const health = await rawHttp1({ port: d.httpPort, path: "/health" });
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: "ok" });
    assert.equal((await rawHttp1({ port: d.httpPort, path: "/metrics" })).status, 401);
    await rawHttp1({ port: d.httpPort, path: "/health", host: "evil.example" });
    const m = await rawHttp1({
      port: d.httpPort,
      path: "/metrics",
      headers: { authorization: `Bearer ${d.token}` },
    });
    assert.equal(m.status, 200);
    assert.match(m.body, /seed_daemon_rejections_total\{reason="token"\} [1-9]/);
    assert.match(m.body, /seed_daemon_rejections_total\{reason="host"\} [1-9]/);
    assert.match(
      m.body,
      /seed_daemon_requests_total\{method="\/com\.seed\.daemon\.v1alpha\.Daemon\/GetInfo",code="ok"\} [1-9]/,
    );
    assert.match(m.body, /seed_daemon_request_duration_seconds_bucket/);
    // The process and runtime metrics, under the daemon's prefix.
    assert.match(m.body, /^seed_daemon_process_resident_memory_bytes [1-9]/m);
    assert.match(m.body, /^seed_daemon_process_cpu_seconds_total [0-9.e-]+$/m);
    assert.match(m.body, /^seed_daemon_nodejs_eventloop_lag_p99_seconds /m);
    assert.match(m.body, /^seed_daemon_nodejs_heap_size_used_bytes [1-9]/m);
  });

  test("paths match exactly: /health/ and /metrics/ are not the public or metrics routes", async () => {
    assert.equal((await rawHttp1({ port: d.httpPort, path: "/health/" })).status, 401);
    assert.equal((await rawHttp1({ port: d.httpPort, path: "/Health" })).status, 401);
    assert.equal(
      (await rawHttp1({ port: d.httpPort, path: "/health", method: "POST" })).status,
      401,
    );
  });
});

test("native gRPC is answered only on the h2c listener", async () => {
  const frame = new Uint8Array([0, 0, 0, 0, 0]);
  const headers = {
    authorization: `Bearer ${d.token}`,
    "content-type": "application/grpc+proto",
    te: "trailers",
  };
  const h1 = await rawHttp1({
    port: d.httpPort,
    method: "POST",
    path: GET_INFO,
    headers,
    body: frame,
  });
  assert.equal(h1.status, 415, "HTTP/1.1 listener refuses the gRPC protocol");
  const h2 = await rawHttp2({
    port: d.grpcPort,
    method: "POST",
    path: GET_INFO,
    headers,
    body: frame,
  });
  assert.equal(h2.status, 200);
  assert.equal(h2.headers["content-type"], "application/grpc+proto");
});
