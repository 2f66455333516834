import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";
import { type RawRequest, type RawResponse, rawHttp1, rawHttp2 } from "../helpers/http.js";

let d: TestDaemon;
before(async () => {
  d = await startDaemon({ args: ["--allowed-host", "seed.internal"] });
});
after(async () => {
  await d.stop();
});

type Send = (r: RawRequest) => Promise<RawResponse>;
const listeners: Array<[string, () => number, Send]> = [
  ["http1", () => d.httpPort, rawHttp1],
  ["h2c", () => d.grpcPort, rawHttp2],
];

const GOOD = (p: number) => [`localhost:${p}`, `LOCALHOST:${p}`, `127.0.0.1:${p}`, `[::1]:${p}`];
const BAD = (p: number) => [
  `evil.example:${p}`,
  `localhost.evil.example:${p}`,
  `0.0.0.0:${p}`,
  `[::]:${p}`,
  `:${p}`,
  `foo.localhost:${p}`,
  `foo.local:${p}`,
  `localhost:${p + 1 > 65535 ? p - 1 : p + 1}`,
  "localhost",
  "127.0.0.1",
  "",
  null,
];

describe("Host gate", () => {
  for (const [name, port, send] of listeners) {
    test(`${name}: loopback names with the real port pass`, async () => {
      const p = port();
      for (const host of GOOD(p)) {
        const res = await send({ port: p, path: "/health", host });
        assert.equal(res.status, 200, `${host} on ${name}`);
        const rpc = await send({
          port: p,
          method: "POST",
          path: "/com.seed.daemon.v1alpha.Daemon/GetInfo",
          host,
          headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
          body: "{}",
        });
        assert.equal(rpc.status, 200, `RPC with ${host} on ${name}`);
      }
    });

    test(`${name}: other Hosts get 403 before routing, also for OPTIONS and /health`, async () => {
      const p = port();
      // Node's HTTP/2 client always sends an :authority and refuses an empty one, so the
      // missing and empty cases are exercised on HTTP/1.1 only.
      const hosts = name === "h2c" ? BAD(p).filter((h) => h !== null && h !== "") : BAD(p);
      for (const host of hosts) {
        for (const [method, path] of [
          ["GET", "/health"],
          ["OPTIONS", "/com.seed.daemon.v1alpha.Daemon/GetInfo"],
          ["POST", "/com.seed.daemon.v1alpha.Daemon/GetInfo"],
          ["GET", "/nope"],
        ] as const) {
          const res = await send({
            port: p,
            method,
            path,
            host,
            headers: {
              authorization: `Bearer ${d.token}`,
              origin: "app://seed",
              "access-control-request-method": "POST",
            },
          });
          assert.equal(
            res.status,
            403,
            `${method} ${path} Host=${JSON.stringify(host)} on ${name}`,
          );
          assert.equal(res.headers["access-control-allow-origin"], undefined);
        }
      }
    });

    test(`${name}: an --allowed-host entry passes with the listener's port only`, async () => {
      const p = port();
      assert.equal(
        (await send({ port: p, path: "/health", host: `seed.internal:${p}` })).status,
        200,
      );
      assert.equal(
        (await send({ port: p, path: "/health", host: `SEED.internal:${p}` })).status,
        200,
      );
      assert.equal((await send({ port: p, path: "/health", host: "seed.internal:1" })).status, 403);
      assert.equal(
        (await send({ port: p, path: "/health", host: `x.seed.internal:${p}` })).status,
        403,
      );
    });
  }
});
