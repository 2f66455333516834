import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { hasCorsHeaders, rawHttp1, rawHttp2 } from "../helpers/http.js";

const GET_INFO = "/com.seed.daemon.v1alpha.Daemon/GetInfo";
const ALLOWED = "https://allowed.example.com";

let d: TestDaemon;
before(async () => {
  d = await startDaemon({ args: ["--cors-origin", ALLOWED] });
});
after(async () => {
  await d.stop();
});

function preflight(origin: string, extra: Record<string, string> = {}, h2 = false) {
  const send = h2 ? rawHttp2 : rawHttp1;
  return send({
    port: h2 ? d.grpcPort : d.httpPort,
    method: "OPTIONS",
    path: GET_INFO,
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization,content-type,connect-protocol-version",
      ...extra,
    },
  });
}

function actual(origin: string, h2 = false) {
  const send = h2 ? rawHttp2 : rawHttp1;
  return send({
    port: h2 ? d.grpcPort : d.httpPort,
    method: "POST",
    path: GET_INFO,
    headers: {
      origin,
      authorization: `Bearer ${d.token}`,
      "content-type": "application/json",
    },
    body: "{}",
  });
}

describe("Origin policy", () => {
  for (const h2 of [false, true]) {
    const name = h2 ? "h2c" : "http1";
    test(`${name}: an unknown origin's preflight and actual request are 403 with no CORS headers`, async () => {
      for (const origin of [
        "https://evil.example",
        "http://localhost:3000",
        "https://attacker.test",
      ]) {
        const pre = await preflight(origin, {}, h2);
        assert.equal(pre.status, 403, `preflight ${origin}`);
        assert.equal(hasCorsHeaders(pre), false);
        const res = await actual(origin, h2);
        assert.equal(res.status, 403, `actual ${origin} with a valid token`);
        assert.equal(hasCorsHeaders(res), false);
        assert.equal(JSON.parse(res.body).code, "permission_denied");
      }
    });
  }

  test("look-alike origins are refused", async () => {
    for (const origin of [
      "https://allowed.example.com.evil.com",
      "http://allowed.example.com",
      "https://allowed.example.com:8443",
      "https://xallowed.example.com",
      "https://allowed.example.co",
      "https://allowed.example.com/",
      "https://allowed.example.com@evil.com",
      "*",
      "",
    ]) {
      const pre = await preflight(origin);
      assert.equal(pre.status, 403, `preflight ${JSON.stringify(origin)}`);
      assert.equal(hasCorsHeaders(pre), false);
      assert.equal((await actual(origin)).status, 403, `actual ${JSON.stringify(origin)}`);
    }
  });

  test("an allowed origin is echoed (never *), with Vary: Origin; preflight needs no token", async () => {
    for (const h2 of [false, true]) {
      for (const origin of [ALLOWED, "HTTPS://ALLOWED.EXAMPLE.COM:443", "app://seed", "null"]) {
        const pre = await preflight(origin, {}, h2);
        assert.equal(pre.status, 204, `preflight ${origin}`);
        assert.equal(pre.headers["access-control-allow-origin"], origin);
        assert.match(String(pre.headers.vary), /Origin/);
        assert.match(String(pre.headers["access-control-allow-headers"]), /Authorization/i);
        assert.match(String(pre.headers["access-control-allow-methods"]), /POST/);
        assert.equal(pre.headers["access-control-allow-private-network"], undefined);
        const res = await actual(origin, h2);
        assert.equal(res.status, 200, `actual ${origin}`);
        assert.equal(res.headers["access-control-allow-origin"], origin);
        assert.match(String(res.headers["access-control-expose-headers"]), /Grpc-Status/i);
        assert.match(String(res.headers.vary), /Origin/);
      }
    }
  });

  test("Private Network Access: the header is granted only when asked", async () => {
    const pre = await preflight(ALLOWED, { "access-control-request-private-network": "true" });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-private-network"], "true");
  });

  test("an allowed origin still needs the token for the actual request", async () => {
    const res = await rawHttp1({
      port: d.httpPort,
      method: "POST",
      path: GET_INFO,
      headers: { origin: ALLOWED, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 401);
  });

  test("requests without Origin (non-browser clients) pass the origin policy", async () => {
    const res = await rawHttp1({
      port: d.httpPort,
      method: "POST",
      path: GET_INFO,
      headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], undefined);
  });
});
