import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { Daemon, State } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { clientFor, codeOf, type Protocol } from "../helpers/clients.js";
import { removeDir, runCli, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";
import { hasCorsHeaders, type RawResponse, rawHttp1 } from "../helpers/http.js";

const SERVICE = "/com.seed.daemon.v1alpha.Daemon";
const GET_INFO = `${SERVICE}/GetInfo`;
const LIST_PAIRED = `${SERVICE}/ListPairedOrigins`;
const PAIRED = "https://paired.example.com";
/** Allowed by --cors-origin and also paired, to see a revoked token fail where the origin still passes. */
const STATIC = "https://static.example.com";
const TOKEN_RE = /^sdo_[A-Za-z0-9_-]{43}$/;
const PROTOCOLS: Protocol[] = ["connect", "grpc-web", "grpc"];

/** Every origin-bound token issued in this file: none may ever show up in a log or a file. */
const issued: string[] = [];

let d: TestDaemon;
const extraDirs: string[] = [];

before(async () => {
  d = await startDaemon({ args: ["--cors-origin", STATIC] });
});
after(async () => {
  await d?.stop();
  if (d) removeDir(dirname(d.dataDir));
  for (const dir of extraDirs) removeDir(dir);
});

/** A Connect JSON POST with optional bearer token and Origin. */
function post(
  opts: { token?: string; origin?: string; headers?: Record<string, string>; body?: string },
  path = GET_INFO,
  port = d.httpPort,
): Promise<RawResponse> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    ...(opts.headers ?? {}),
  };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.origin !== undefined) headers.origin = opts.origin;
  return rawHttp1({ port, method: "POST", path, headers, body: opts.body ?? "{}" });
}

/** A CORS preflight as a browser sends it before a Connect call with a bearer token. */
function preflight(origin: string, path = GET_INFO, port = d.httpPort): Promise<RawResponse> {
  return rawHttp1({
    port,
    method: "OPTIONS",
    path,
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization,content-type",
    },
  });
}

function varyHasOrigin(res: RawResponse): boolean {
  return String(res.headers.vary ?? "")
    .split(",")
    .some((v) => v.trim().toLowerCase() === "origin");
}

async function assertOriginRefused(origin: string): Promise<void> {
  const pre = await preflight(origin);
  assert.equal(pre.status, 403, `preflight from ${origin}`);
  assert.equal(hasCorsHeaders(pre), false, `no CORS headers on preflight from ${origin}`);
  const res = await post({ token: d.token, origin });
  assert.equal(res.status, 403, `request from ${origin}`);
  assert.equal(hasCorsHeaders(res), false, `no CORS headers on request from ${origin}`);
  assert.equal(JSON.parse(res.body).code, "permission_denied");
}

async function assertOriginAllowed(origin: string): Promise<void> {
  const pre = await preflight(origin);
  assert.equal(pre.status, 204, `preflight from ${origin}`);
  assert.equal(pre.headers["access-control-allow-origin"], origin);
  assert.match(String(pre.headers["access-control-allow-headers"]), /authorization/i);
  assert.equal(pre.headers["access-control-max-age"], "60");
  assert.ok(varyHasOrigin(pre));
  const res = await post({ token: d.token, origin });
  assert.equal(res.status, 200, `request from ${origin}: ${res.body}`);
  assert.equal(res.headers["access-control-allow-origin"], origin);
  assert.ok(varyHasOrigin(res), "Vary: Origin");
  assert.equal(JSON.parse(res.body).state, "ACTIVE");
}

function master() {
  return clientFor(Daemon, "connect", d, d.token);
}

async function pair(origin: string, label = "") {
  const res = await master().pairOrigin({ origin, label });
  issued.push(res.token);
  return res;
}

function storeFile(dataDir = d.dataDir): string {
  return join(dataDir, "paired_origins.json");
}

function readStore(dataDir = d.dataDir): Buffer | undefined {
  try {
    return readFileSync(storeFile(dataDir));
  } catch {
    return undefined;
  }
}

const sha256Hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("paired origins over the wire", () => {
  let token = "";

  test("an unknown origin is refused: 403 preflight and 403 request, no CORS headers", async () => {
    await assertOriginRefused(PAIRED);
  });

  test("PairOrigin with the master token returns the normalised origin and a token", async () => {
    const res = await pair("HTTPS://Paired.Example.com:443/", "Paired app");
    assert.equal(res.origin, PAIRED);
    assert.equal(res.label, "Paired app");
    assert.match(res.token, TOKEN_RE);
    const created = Number(res.createTime?.seconds ?? 0n) * 1000;
    assert.ok(Math.abs(Date.now() - created) < 120_000, "create_time is recent");
    token = res.token;
  });

  test("after pairing: 204 preflight and 200 request with the origin echoed and Vary: Origin", async () => {
    await assertOriginAllowed(PAIRED);
  });

  test("the paired token reads GetInfo from its origin on every protocol", async () => {
    for (const protocol of PROTOCOLS) {
      const info = await clientFor(Daemon, protocol, d, token, { origin: PAIRED }).getInfo({});
      assert.equal(info.state, State.ACTIVE, protocol);
    }
    const res = await post({ token, origin: PAIRED });
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], PAIRED);
  });

  test("the paired token may call ListKeys from its origin", async () => {
    const code = await codeOf(
      clientFor(Daemon, "connect", d, token, { origin: PAIRED }).listKeys({}),
    );
    assert.notEqual(code, Code.PermissionDenied);
    assert.notEqual(code, Code.Unauthenticated);
  });

  test("the paired token is unauthenticated without an Origin or from another allowed origin", async () => {
    for (const protocol of PROTOCOLS) {
      const noOrigin = clientFor(Daemon, protocol, d, token);
      assert.equal(await codeOf(noOrigin.getInfo({})), Code.Unauthenticated, protocol);
      for (const origin of ["app://seed", "null", STATIC]) {
        const other = clientFor(Daemon, protocol, d, token, { origin });
        assert.equal(
          await codeOf(other.getInfo({})),
          Code.Unauthenticated,
          `${protocol} ${origin}`,
        );
      }
    }
    const res = await post({ token, origin: "app://seed" });
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.body).code, "unauthenticated");
  });

  test("the paired token may not sign, export, change keys or manage pairings", async () => {
    const c = clientFor(Daemon, "connect", d, token, { origin: PAIRED });
    const calls: [string, () => Promise<unknown>][] = [
      ["SignData", () => c.signData({ signingKeyName: "main", data: new Uint8Array([1]) })],
      ["ExportKey", () => c.exportKey({ name: "main" })],
      ["DeleteAllKeys", () => c.deleteAllKeys({})],
      ["GenMnemonic", () => c.genMnemonic({})],
      ["ListPairedOrigins", () => c.listPairedOrigins({})],
      ["PairOrigin", () => c.pairOrigin({ origin: "https://other.example.com" })],
      ["UnpairOrigin", () => c.unpairOrigin({ origin: PAIRED })],
    ];
    for (const [name, call] of calls) {
      assert.equal(await codeOf(call()), Code.PermissionDenied, name);
    }
    // On gRPC too, and nothing changed.
    const g = clientFor(Daemon, "grpc", d, token, { origin: PAIRED });
    assert.equal(
      await codeOf(g.pairOrigin({ origin: "https://other.example.com" })),
      Code.PermissionDenied,
    );
    const list = await master().listPairedOrigins({});
    assert.deepEqual(
      list.origins.map((o) => o.origin),
      [PAIRED],
    );
    const raw = await post({ token, origin: PAIRED }, `${SERVICE}/SignData`);
    assert.equal(raw.status, 403);
    assert.equal(JSON.parse(raw.body).code, "permission_denied");
    assert.equal(raw.headers["access-control-allow-origin"], PAIRED);
  });

  test("the paired token may not assert a principal or capabilities", async () => {
    const asserted: Record<string, string>[] = [
      { "x-seed-principal": "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f" },
      { "x-seed-capabilities": "AAAA" },
    ];
    for (const headers of asserted) {
      for (const protocol of PROTOCOLS) {
        const c = clientFor(Daemon, protocol, d, token, { origin: PAIRED, ...headers });
        assert.equal(await codeOf(c.getInfo({})), Code.PermissionDenied, protocol);
      }
    }
  });

  test("the master token works from the paired origin too", async () => {
    const info = await clientFor(Daemon, "connect", d, d.token, { origin: PAIRED }).getInfo({});
    assert.equal(info.state, State.ACTIVE);
  });

  test("look-alike origins stay refused", async () => {
    for (const origin of [
      "https://paired.example.com.evil.com",
      "https://evil.paired.example.com",
      "https://paired-example.com",
      "https://paired.example.co",
      "https://paired.example.com.",
      "http://paired.example.com",
      "wss://paired.example.com",
      "https://paired.example.com:8443",
      "https://paired.example.com/",
      "https://paired.example.com, https://evil.com",
    ]) {
      await assertOriginRefused(origin);
      // And the token is no use from there either.
      const res = await post({ token, origin });
      assert.equal(res.status, 403, origin);
      assert.equal(hasCorsHeaders(res), false, origin);
    }
  });

  test("ListPairedOrigins never shows a token", async () => {
    const list = await master().listPairedOrigins({});
    assert.equal(list.origins.length, 1);
    assert.equal(list.origins[0]?.origin, PAIRED);
    assert.equal(list.origins[0]?.label, "Paired app");
    assert.equal(list.origins[0]?.token, "");
    const raw = await post({ token: d.token }, LIST_PAIRED);
    assert.equal(raw.status, 200);
    assert.ok(!raw.body.includes(token));
    assert.ok(!raw.body.includes("sdo_"));
    assert.ok(!raw.body.includes(sha256Hex(token)), "not even the hash");
    assert.equal(JSON.parse(raw.body).origins[0].token, undefined);
  });

  test("the store file is 0600 and keeps only the token's hash", () => {
    const file = readStore();
    assert.ok(file !== undefined);
    assert.equal(statSync(storeFile()).mode & 0o777, 0o600);
    const text = file.toString("utf8");
    assert.ok(!text.includes(token), "token not in paired_origins.json");
    assert.ok(text.includes(sha256Hex(token)), "its SHA-256 is");
  });

  test("pairing again replaces the token: the old one is unauthenticated at once", async () => {
    const again = await pair(PAIRED, "Renamed");
    assert.match(again.token, TOKEN_RE);
    assert.notEqual(again.token, token);
    const old = clientFor(Daemon, "connect", d, token, { origin: PAIRED });
    assert.equal(await codeOf(old.getInfo({})), Code.Unauthenticated);
    const fresh = clientFor(Daemon, "connect", d, again.token, { origin: PAIRED });
    assert.equal((await fresh.getInfo({})).state, State.ACTIVE);
    const list = await master().listPairedOrigins({});
    assert.deepEqual(
      list.origins.map((o) => [o.origin, o.label]),
      [[PAIRED, "Renamed"]],
    );
    token = again.token;
  });

  test("UnpairOrigin revokes at once: 403 again, no restart, and the token is dead", async () => {
    await master().unpairOrigin({ origin: PAIRED });
    await assertOriginRefused(PAIRED);
    const res = await post({ token, origin: PAIRED });
    assert.equal(res.status, 403);
    assert.equal(hasCorsHeaders(res), false);
    assert.equal(
      await codeOf(clientFor(Daemon, "connect", d, token).getInfo({})),
      Code.Unauthenticated,
    );
    assert.deepEqual((await master().listPairedOrigins({})).origins, []);
  });

  test("a revoked token is unauthenticated even where its origin is still allowed", async () => {
    const p = await pair(STATIC);
    const c = clientFor(Daemon, "connect", d, p.token, { origin: STATIC });
    assert.equal((await c.getInfo({})).state, State.ACTIVE);
    await master().unpairOrigin({ origin: `${STATIC}/` });
    // The origin passes (it is in --cors-origin); the token no longer does.
    assert.equal(await codeOf(c.getInfo({})), Code.Unauthenticated);
    const res = await post({ token: p.token, origin: STATIC });
    assert.equal(res.status, 401);
    assert.equal(res.headers["access-control-allow-origin"], STATIC);
  });

  test("unpairing an unknown origin is not_found", async () => {
    assert.equal(
      await codeOf(master().unpairOrigin({ origin: "https://never-paired.example.com" })),
      Code.NotFound,
    );
    assert.equal(await codeOf(master().unpairOrigin({ origin: PAIRED })), Code.NotFound);
  });

  test("invalid origins are invalid_argument and nothing is stored", async () => {
    const before = readStore();
    for (const origin of [
      "",
      "null",
      "*",
      "https://*.x.com",
      "https://a.com/path",
      "https://u@a.com",
      "https://u:p@a.com",
      "https://a.com?q",
      "https://a.com#f",
      "not a url",
      " https://a.com",
      "app://seed",
      "file:///etc/passwd",
      "javascript://a.com",
      "https://a.com:99999",
      "https://moc.elpmaxe\u202e.com",
    ]) {
      assert.equal(
        await codeOf(master().pairOrigin({ origin, label: "x" })),
        Code.InvalidArgument,
        JSON.stringify(origin),
      );
    }
    assert.equal(
      await codeOf(master().pairOrigin({ origin: "https://a.com", label: "bad\nlabel" })),
      Code.InvalidArgument,
    );
    assert.deepEqual(readStore(), before);
    assert.deepEqual((await master().listPairedOrigins({})).origins, []);
  });

  test("audit records for pair and unpair, with outcome and peer, never a token", () => {
    const records = d
      .output()
      .split("\n")
      .filter((l) => l.includes('"audit":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const of = (event: string, outcome: string) =>
      records.filter((r) => r.event === event && r.outcome === outcome);
    const pairedOk = of("origin.pair", "ok");
    assert.ok(pairedOk.length >= 3);
    assert.ok(pairedOk.some((r) => r.origin === PAIRED));
    for (const r of pairedOk) {
      assert.equal(r.method, "PairOrigin");
      assert.equal(r.remote_addr, "127.0.0.1");
    }
    assert.ok(of("origin.pair", "error").some((r) => /invalid_argument/.test(String(r.reason))));
    const unpairedOk = of("origin.unpair", "ok");
    assert.ok(unpairedOk.some((r) => r.origin === PAIRED));
    assert.ok(unpairedOk.every((r) => r.method === "UnpairOrigin"));
    assert.ok(of("origin.unpair", "error").some((r) => /not_found/.test(String(r.reason))));
    // Caller input in a reason is escaped: no bidi control reaches the log raw.
    assert.ok(records.some((r) => String(r.origin).includes("\\u{202e}")));
    assert.ok(!d.output().includes("\u202e"));
  });

  test("no issued token ever appears in the daemon output or the store file", () => {
    assert.ok(issued.length >= 3);
    const out = d.output();
    const file = readStore()?.toString("utf8") ?? "";
    for (const t of issued) {
      assert.ok(!out.includes(t), "token not in daemon output");
      assert.ok(!file.includes(t), "token not in paired_origins.json");
    }
  });
});

describe("paired origins on disk", () => {
  test("a pairing survives a daemon restart with the same data dir", async () => {
    const first = await startDaemon();
    extraDirs.push(dirname(first.dataDir));
    let second: TestDaemon | undefined;
    try {
      const p = await clientFor(Daemon, "connect", first, first.token).pairOrigin({
        origin: PAIRED,
        label: "kept",
      });
      issued.push(p.token);
      await first.stop();
      second = await startDaemon({ dataDir: first.dataDir });
      const list = await clientFor(Daemon, "connect", second, second.token).listPairedOrigins({});
      assert.deepEqual(
        list.origins.map((o) => [o.origin, o.label]),
        [[PAIRED, "kept"]],
      );
      const pre = await preflight(PAIRED, GET_INFO, second.httpPort);
      assert.equal(pre.status, 204);
      const c = clientFor(Daemon, "connect", second, p.token, { origin: PAIRED });
      assert.equal((await c.getInfo({})).state, State.ACTIVE);
    } finally {
      await first.stop();
      await second?.stop();
    }
  });

  /** Runs the daemon on a data dir expected to be refused; resolves with its exit code and output. */
  function runRefused(dataDir: string): Promise<{ code: number | null; out: string }> {
    return runCli(
      ["--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
      { timeoutMs: 20_000 },
    ).then((r) => ({ code: r.code, out: r.stdout + r.stderr }));
  }

  for (const [name, content] of [
    ["truncated JSON", '{"version":1,"origins":[{"origin":"https://a.com"'],
    [
      "a plaintext token field",
      `${JSON.stringify({
        version: 1,
        origins: [
          {
            origin: "https://a.com",
            label: "",
            createTime: "2024-01-01T00:00:00.000Z",
            token: "sdo_plaintext",
          },
        ],
      })}\n`,
    ],
    ["binary garbage", "\u0000\u00ff\u00fe garbage"],
  ] as const) {
    test(`a corrupted paired_origins.json (${name}) stops the daemon with exit 2 and leaves it untouched`, async () => {
      const root = tempDir();
      extraDirs.push(root);
      const dataDir = join(root, "data");
      mkdirSync(dataDir, { mode: 0o700 });
      writeFileSync(storeFile(dataDir), content, { mode: 0o600 });
      const bytes = readFileSync(storeFile(dataDir));
      const { code, out } = await runRefused(dataDir);
      assert.equal(code, 2, out);
      assert.match(out, /refusing to load paired origins/);
      assert.ok(out.includes(storeFile(dataDir)), "the message names the file");
      assert.ok(!out.includes("daemon ready"));
      assert.deepEqual(readFileSync(storeFile(dataDir)), bytes, "file left byte-identical");
      assert.equal(statSync(storeFile(dataDir)).mode & 0o777, 0o600);
    });
  }
});
