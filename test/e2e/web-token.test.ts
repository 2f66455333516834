import assert from "node:assert/strict";
import { lstatSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor, codeOf, type Protocol } from "../helpers/clients.js";
import { randomToken, runCli, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";
import { rawHttp1 } from "../helpers/http.js";
import { loginProof } from "../helpers/login-proof.js";

const PROTOCOLS: Protocol[] = ["connect", "grpc-web", "grpc"];
const WEB = randomToken();

describe("the web token", () => {
  let d: TestDaemon;
  let auditFile: string;
  before(async () => {
    auditFile = join(tempDir(), "audit.jsonl");
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--log-level", "trace", "--audit-log", auditFile],
    });
  });
  after(async () => {
    await d.stop();
  });

  for (const protocol of PROTOCOLS) {
    test(`${protocol}: may call GetInfo and the read RPCs, nothing that touches keys, signs or writes`, async () => {
      const daemon = clientFor(Daemon, protocol, d, WEB);
      const docs = clientFor(Documents, protocol, d, WEB);
      const acl = clientFor(AccessControl, protocol, d, WEB);
      assert.equal(await codeOf(daemon.getInfo({})), "ok");
      const refused = {
        ListKeys: () => daemon.listKeys({}),
        GenMnemonic: () => daemon.genMnemonic({}),
        RegisterKey: () => daemon.registerKey({ name: "k", mnemonic: ["abandon"] }),
        ExportKey: () => daemon.exportKey({ name: "k" }),
        DeleteAllKeys: () => daemon.deleteAllKeys({}),
        SignData: () => daemon.signData({ signingKeyName: "k", data: new Uint8Array([1]) }),
        PairOrigin: () => daemon.pairOrigin({ origin: "https://a.example" }),
        ListPairedOrigins: () => daemon.listPairedOrigins({}),
        StoreBlobs: () => daemon.storeBlobs({}),
        CreateDocumentChange: () =>
          docs.createDocumentChange({ account: "a", signingKeyName: "k" }),
        DeleteDocument: () => docs.deleteDocument({ account: "a" }),
        CreateCapability: () => acl.createCapability({ signingKeyName: "k" }),
      };
      for (const [name, call] of Object.entries(refused)) {
        assert.equal(await codeOf(call()), Code.PermissionDenied, name);
      }
      // Reads get past the scope check: whatever they answer, it is not a scope refusal.
      for (const [name, call] of Object.entries({
        GetDocument: () => docs.getDocument({ account: "a" }),
        ListDocuments: () => docs.listDocuments({ account: "a" }),
        GetCapability: () => acl.getCapability({ id: "x" }),
      })) {
        const code = await codeOf(call());
        assert.notEqual(code, Code.PermissionDenied, name);
        assert.notEqual(code, Code.Unauthenticated, name);
      }
    });
  }

  test("may not read /metrics; the full token still may", async () => {
    const get = (token: string) =>
      rawHttp1({
        port: d.httpPort,
        path: "/metrics",
        headers: { authorization: `Bearer ${token}` },
      });
    assert.equal((await get(WEB)).status, 403);
    assert.equal((await get(d.token)).status, 200);
  });

  test("is not the full token: the full token keeps its reach", async () => {
    assert.equal(await codeOf(clientFor(Daemon, "connect", d, d.token).listKeys({})), "ok");
  });

  test("a refusal leaves a scope.denied audit record; the token never reaches a log", async () => {
    await codeOf(clientFor(Daemon, "connect", d, WEB).signData({ signingKeyName: "k" }));
    const records = readFileSync(auditFile, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(
      records.some(
        (r) =>
          r.event === "scope.denied" &&
          r.method === "SignData" &&
          r.outcome === "denied" &&
          r.credential === "web",
      ),
    );
    for (const text of [d.output(), readFileSync(auditFile, "utf8")]) {
      assert.equal(text.includes(WEB), false);
      assert.equal(text.includes(WEB.slice(0, 16)), false);
    }
    assert.match(d.output(), /"webTokenSource":"env"/);
  });
});

describe("a forwarded browser user, against the real binary", () => {
  const SITE = "https://site.example";
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--cors-origin", SITE, "--log-level", "trace"],
    });
  });
  after(async () => {
    await d.stop();
  });

  test("needs a valid login proof for one of the --cors-origin entries", async () => {
    const seed = keyFromMnemonic(
      "legal winner thank year wave sausage worth useful legal winner thank yellow".split(" "),
    );
    const principal = principalToString(publicKeyFromSeed(seed));
    const call = (headers: Record<string, string>, protocol: Protocol = "connect") =>
      codeOf(clientFor(Daemon, protocol, d, WEB, headers).getInfo({}));
    const good = loginProof(seed, SITE);
    for (const protocol of PROTOCOLS) {
      assert.equal(
        await call({ "x-seed-principal": principal, "x-seed-principal-proof": good }, protocol),
        "ok",
        protocol,
      );
    }
    const bad: Record<string, string>[] = [
      { "x-seed-principal": principal },
      { "x-seed-principal": principal, "x-seed-principal-proof": loginProof(seed, "null") },
      { "x-seed-principal": principal, "x-seed-principal-proof": loginProof(seed, "app://seed") },
      {
        "x-seed-principal": principal,
        "x-seed-principal-proof": loginProof(seed, "https://x.example"),
      },
    ];
    for (const headers of bad) {
      assert.equal(await call(headers), Code.Unauthenticated);
    }
    assert.equal(await call({ "x-seed-capabilities": "!" }), Code.InvalidArgument);
    assert.equal(d.output().includes(good), false, "the proof never reaches the log");
  });
});

describe("web token configuration", () => {
  test("--web-token-path creates a 0600 token file once and reads it on the next start", async () => {
    const dir = tempDir();
    const file = join(dir, "web.token");
    const first = await startDaemon({ args: ["--web-token-path", file] });
    const token = readFileSync(file, "utf8").trim();
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    assert.equal(await codeOf(clientFor(Daemon, "connect", first, token).getInfo({})), "ok");
    assert.equal(
      await codeOf(clientFor(Daemon, "connect", first, token).listKeys({})),
      Code.PermissionDenied,
    );
    await first.stop();
    const second = await startDaemon({ dataDir: first.dataDir, args: ["--web-token-path", file] });
    assert.equal(readFileSync(file, "utf8").trim(), token);
    assert.equal(await codeOf(clientFor(Daemon, "connect", second, token).getInfo({})), "ok");
    await second.stop();
  });

  test("no web token is configured by default: a random bearer is refused", async () => {
    const d = await startDaemon();
    assert.equal(
      await codeOf(clientFor(Daemon, "connect", d, randomToken()).getInfo({})),
      Code.Unauthenticated,
    );
    assert.match(d.output(), /"webTokenSource":"none"/);
    await d.stop();
  });

  test("a short, reused, symlinked or group-readable web token stops start-up with exit 2", async () => {
    const full = randomToken();
    const dir = tempDir();
    const link = join(dir, "link.token");
    symlinkSync(join(dir, "elsewhere"), link);
    const loose = join(dir, "loose.token");
    writeFileSync(loose, `${randomToken()}\n`, { mode: 0o644 });
    const cases: Array<[string, Record<string, string>, string[], RegExp]> = [
      ["short", { SEED_DAEMON_WEB_TOKEN: "short" }, [], /SEED_DAEMON_WEB_TOKEN is shorter/],
      [
        "same as the full token",
        { SEED_DAEMON_AUTH_TOKEN: full, SEED_DAEMON_WEB_TOKEN: full },
        [],
        /must differ/,
      ],
      ["symlink", {}, ["--web-token-path", link], /symlink/],
      ["group-readable", {}, ["--web-token-path", loose], /accessible by group or other/],
    ];
    for (const [name, env, args, message] of cases) {
      const r = await runCli(
        [
          "--data-dir",
          join(tempDir(), "data"),
          "--http-addr",
          "127.0.0.1:0",
          "--grpc-addr",
          "127.0.0.1:0",
          ...args,
        ],
        { env },
      );
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      for (const secret of [full, env.SEED_DAEMON_WEB_TOKEN ?? full]) {
        assert.equal(
          r.stderr.includes(secret) && secret.length > 8,
          false,
          `${name}: secret echoed`,
        );
      }
    }
  });
});
