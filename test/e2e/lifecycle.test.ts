import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { BIN, cleanEnv, startDaemon, tempDir } from "../helpers/daemon.js";
import { GET_INFO_PATH, getInfoRaw, rawHttp1, rawHttp2 } from "../helpers/http.js";

function run(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: cleanEnv(env),
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe("lifecycle", () => {
  test("daemon.json describes the running daemon; SIGTERM drains, exits 0 and removes it", async () => {
    const d = await startDaemon();
    const file = join(d.dataDir, "daemon.json");
    const info = JSON.parse(readFileSync(file, "utf8"));
    assert.equal(info.pid, d.proc.pid);
    assert.equal(info.httpAddr, d.httpAddr);
    assert.equal(info.grpcAddr, d.grpcAddr);
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.ok(!Number.isNaN(Date.parse(info.startTime)));
    const exit = await d.stop("SIGTERM");
    assert.equal(exit.code, 0);
    assert.equal(existsSync(file), false);
    assert.match(d.output(), /"msg":"stopped"/);
  });

  test("SIGINT also exits 0", async () => {
    const d = await startDaemon();
    assert.equal((await d.stop("SIGINT")).code, 0);
    assert.equal(existsSync(join(d.dataDir, "daemon.json")), false);
  });

  test("--http-port 0 binds 127.0.0.1 and warns that the flag is deprecated", async () => {
    const d = await startDaemon({ args: ["--http-port", "0", "--grpc-port", "0"] });
    try {
      assert.match(d.httpAddr, /^127\.0\.0\.1:\d+$/);
      assert.match(d.grpcAddr, /^127\.0\.0\.1:\d+$/);
      assert.match(d.output(), /--http-port is deprecated/);
      assert.match(d.output(), /--grpc-port is deprecated/);
    } finally {
      await d.stop();
    }
  });

  test("a non-loopback bind is allowed but warned about, and the Host gate stays on", async () => {
    const d = await startDaemon({ args: ["--http-addr", "0.0.0.0:0"] });
    try {
      assert.match(d.output(), /not a loopback address/);
      const port = d.httpPort;
      assert.equal(
        (await rawHttp1({ port, path: "/health", host: `localhost:${port}` })).status,
        200,
      );
      assert.equal(
        (await rawHttp1({ port, path: "/health", host: `evil.example:${port}` })).status,
        403,
      );
    } finally {
      await d.stop();
    }
  });

  test("a second daemon on the same data dir refuses to start", async () => {
    const d = await startDaemon();
    try {
      const r = run([
        "--data-dir",
        d.dataDir,
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
      ]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /another seed-daemon/);
    } finally {
      await d.stop();
    }
  });

  test("bad flag values exit 2 with one line naming the flag", () => {
    const dataDir = join(tempDir(), "d");
    const cases: Array<[string[], string, Record<string, string>?]> = [
      [["--http-addr", "nope"], "--http-addr"],
      [["--http-addr", "127.0.0.1:99999"], "--http-addr"],
      [["--grpc-addr", "127.0.0.1"], "--grpc-addr"],
      [["--http-port", "abc"], "--http-port"],
      [["--log-level", "loud"], "--log-level"],
      [["--max-request-bytes", "-5"], "--max-request-bytes"],
      [["--allowed-host", "*.example.com"], "--allowed-host"],
      [["--cors-origin", "not an origin"], "--cors-origin"],
      [[], "--http-addr", { SEED_DAEMON_HTTP_ADDR: "bad" }],
      [[], "--public-only", { SEED_DAEMON_PUBLIC_ONLY: "maybe" }],
    ];
    for (const [args, flag, env] of cases) {
      const r = run(["--data-dir", dataDir, ...args], env);
      assert.equal(r.code, 2, `${args.join(" ")} ${JSON.stringify(env ?? {})}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]?.includes(flag), `${lines[0]} names ${flag}`);
    }
    const unknown = run(["--no-such-flag"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--no-such-flag/);
  });

  test("--public-only is reported by GetInfo", async () => {
    const d = await startDaemon({ args: ["--public-only"] });
    try {
      const res = await getInfoRaw(d.httpPort, d.token);
      assert.equal(JSON.parse(res.body).publicOnly, true);
    } finally {
      await d.stop();
    }
  });

  test("--max-request-bytes refuses larger bodies with resource_exhausted on both listeners", async () => {
    const d = await startDaemon({ args: ["--max-request-bytes", "1024"] });
    try {
      const headers = { authorization: `Bearer ${d.token}`, "content-type": "application/json" };
      const big = JSON.stringify({ pad: "a".repeat(4000) });
      for (const [send, port] of [
        [rawHttp1, d.httpPort],
        [rawHttp2, d.grpcPort],
      ] as const) {
        const res = await send({ port, method: "POST", path: GET_INFO_PATH, headers, body: big });
        assert.equal(res.status, 429);
        assert.equal(JSON.parse(res.body).code, "resource_exhausted");
      }
      const chunked = await rawHttp1({
        port: d.httpPort,
        method: "POST",
        path: GET_INFO_PATH,
        headers: { ...headers, "transfer-encoding": "chunked" },
        body: big,
      });
      assert.equal(JSON.parse(chunked.body).code, "resource_exhausted");
      assert.equal((await getInfoRaw(d.httpPort, d.token)).status, 200, "small bodies still pass");
    } finally {
      await d.stop();
    }
  });
});
