import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import {
  DocumentChangeSchema,
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor, codeOf } from "../helpers/clients.js";
import { randomToken, runCli, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";
import { getInfoRaw } from "../helpers/http.js";

const WEB = randomToken();
const PAIRED = "https://paired.example";
const ALICE_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const ALICE = principalToString(publicKeyFromSeed(keyFromMnemonic(ALICE_WORDS)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tokenFile(d: TestDaemon): string {
  return join(d.dataDir, "auth.token");
}

function readToken(d: TestDaemon): string {
  return readFileSync(tokenFile(d), "utf8").trim();
}

function auditRecords(file: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function errorOf(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("expected the call to fail");
}

/** Polls until `check` holds (or fails the test after ~10 s). */
async function eventually(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Writes a public document of alice's with the given token. */
function writeDoc(d: TestDaemon, token: string, path: string) {
  return clientFor(Documents, "connect", d, token).createDocumentChange({
    account: ALICE,
    path,
    signingKeyName: "alice",
    visibility: ResourceVisibility.PUBLIC,
    changes: [
      create(DocumentChangeSchema, {
        op: { case: "setMetadata", value: { key: "title", value: path } },
      }),
    ],
  });
}

/** The old token is refused on both checks (pipeline: 401; interceptor path: unauthenticated). */
async function assertRefused(d: TestDaemon, token: string): Promise<void> {
  assert.equal((await getInfoRaw(d.httpPort, token)).status, 401);
  assert.equal(
    await codeOf(clientFor(Daemon, "connect", d, token).getInfo({})),
    Code.Unauthenticated,
  );
  assert.equal(await codeOf(clientFor(Daemon, "grpc", d, token).getInfo({})), Code.Unauthenticated);
}

function assertNoToken(text: string, tokens: string[], where: string): void {
  for (const t of tokens) assert.ok(!text.includes(t), `${where} holds a token`);
}

describe("token rotation", () => {
  test("token rotate: new file token at once, old one refused, streams and other tokens unaffected", async () => {
    const auditFile = join(tempDir(), "audit.jsonl");
    const d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--audit-log", auditFile],
    });
    try {
      const old = d.token;
      const master = clientFor(Daemon, "connect", d, old);
      await master.registerKey({ name: "alice", mnemonic: ALICE_WORDS });
      const paired = (await master.pairOrigin({ origin: PAIRED })).token;
      const asPaired = clientFor(Daemon, "connect", d, paired, { origin: PAIRED });

      // Neither limited credential may rotate (the interceptor's scopes refuse it).
      assert.equal(
        await codeOf(clientFor(Daemon, "connect", d, WEB).rotateToken({})),
        Code.PermissionDenied,
      );
      assert.equal(await codeOf(asPaired.rotateToken({})), Code.PermissionDenied);
      assert.equal(readToken(d), old);

      // A stream opened with the old token, seen working before the rotation.
      const abort = new AbortController();
      const seen: string[] = [];
      const stream = clientFor(Documents, "grpc", d, old).watchDocuments(
        { account: ALICE },
        { signal: abort.signal },
      );
      const done = (async () => {
        try {
          for await (const ev of stream) seen.push(ev.path);
          return "ended";
        } catch (err) {
          return ConnectError.from(err).code;
        }
      })();
      for (let i = 0; seen.length === 0 && i < 100; i++) {
        await writeDoc(d, old, `/warmup${i}`);
        await sleep(50);
      }
      assert.ok(seen.length > 0, "the watcher saw a document before the rotation");

      const r = await runCli(["token", "rotate", "--data-dir", d.dataDir]);
      assert.equal(r.code, 0, r.stderr);
      const fresh = readToken(d);
      assert.notEqual(fresh, old);
      assert.equal(Buffer.from(fresh, "base64url").length, 32);
      assert.match(fresh, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(r.stdout.includes(tokenFile(d)), r.stdout);
      assertNoToken(r.stdout + r.stderr, [old, fresh], "the CLI output");
      assert.equal(statSync(tokenFile(d)).mode & 0o777, 0o600);

      await assertRefused(d, old);
      assert.equal((await getInfoRaw(d.httpPort, fresh)).status, 200);
      assert.equal(await codeOf(clientFor(Daemon, "grpc", d, fresh).getInfo({})), "ok");

      // The stream opened with the old token still gets events.
      await writeDoc(d, fresh, "/after-rotation");
      await eventually("the event after the rotation", () => seen.includes("/after-rotation"));

      // Paired-origin and web tokens are untouched.
      assert.equal(await codeOf(asPaired.listKeys({})), "ok");
      assert.equal(await codeOf(clientFor(Daemon, "connect", d, WEB).getInfo({})), "ok");
      assert.equal((await getInfoRaw(d.httpPort, WEB)).status, 200);

      // The CLI's next command reads the new file.
      const list = await runCli(["keys", "list", "--data-dir", d.dataDir]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /alice/);

      // A second rotation through the RPC: the response names the file, never the token.
      const res = await clientFor(Daemon, "connect", d, fresh).rotateToken({});
      assert.equal(res.tokenPath, tokenFile(d));
      const third = readToken(d);
      assert.notEqual(third, fresh);
      assertNoToken(JSON.stringify(res), [third], "the response");
      await assertRefused(d, fresh);

      // Cancelling the old stream ends it cleanly; the daemon carries on.
      abort.abort();
      assert.equal(await done, Code.Canceled);
      assert.equal((await getInfoRaw(d.httpPort, third)).status, 200);

      const rotations = auditRecords(auditFile).filter((rec) => rec.event === "token.rotate");
      assert.equal(rotations.length, 2);
      for (const rec of rotations) {
        assert.equal(rec.outcome, "ok");
        assert.equal(rec.method, "RotateToken");
        assert.equal(rec.credential, "master");
        assert.match(String(rec.reason), /auth\.token/);
      }
      const all = [old, fresh, third, paired, WEB];
      assertNoToken(readFileSync(auditFile, "utf8"), all, "the audit log");
      assertNoToken(d.output(), all, "the daemon log");
    } finally {
      await d.stop();
    }
  });

  test("SIGHUP rotates the file token the same way, and is audited", async () => {
    const auditFile = join(tempDir(), "audit.jsonl");
    const d = await startDaemon({ args: ["--audit-log", auditFile] });
    try {
      const old = d.token;
      d.proc.kill("SIGHUP");
      await eventually("the token file to change", () => readToken(d) !== old);
      const fresh = readToken(d);
      assert.equal(Buffer.from(fresh, "base64url").length, 32);
      assert.equal(statSync(tokenFile(d)).mode & 0o777, 0o600);
      await assertRefused(d, old);
      assert.equal((await getInfoRaw(d.httpPort, fresh)).status, 200);
      assert.equal(d.proc.exitCode, null, "the daemon keeps running");

      await eventually("the audit record", () =>
        auditRecords(auditFile).some((rec) => rec.event === "token.rotate"),
      );
      const rec = auditRecords(auditFile).find((x) => x.event === "token.rotate");
      assert.equal(rec?.outcome, "ok");
      assert.equal(rec?.method, "SIGHUP");
      assert.match(d.output(), /"token rotated"/);
      assertNoToken(readFileSync(auditFile, "utf8"), [old, fresh], "the audit log");
      assertNoToken(d.output(), [old, fresh], "the daemon log");

      // It still stops as before.
      const exit = await d.stop("SIGTERM");
      assert.equal(exit.code, 0);
    } finally {
      await d.stop();
    }
  });

  test("a token from SEED_DAEMON_AUTH_TOKEN cannot be rotated: failed_precondition, SIGHUP only warns", async () => {
    const auditFile = join(tempDir(), "audit.jsonl");
    const token = randomToken();
    const d = await startDaemon({ envToken: token, args: ["--audit-log", auditFile] });
    try {
      const err = await errorOf(clientFor(Daemon, "connect", d, token).rotateToken({}));
      assert.equal(err.code, Code.FailedPrecondition);
      assert.match(err.rawMessage, /environment/);
      assert.match(err.rawMessage, /SEED_DAEMON_AUTH_TOKEN/);

      const r = await runCli(["token", "rotate", "--data-dir", d.dataDir], {
        env: { SEED_DAEMON_AUTH_TOKEN: token },
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /failed_precondition: .*environment/);
      assertNoToken(r.stdout + r.stderr, [token], "the CLI output");

      d.proc.kill("SIGHUP");
      await eventually("the warning", () => /SIGHUP: the token was not rotated/.test(d.output()));
      const warning = d
        .output()
        .split("\n")
        .find((l) => l.includes("SIGHUP: the token was not rotated"));
      assert.equal(JSON.parse(warning ?? "{}").level, 40, "logged as a warning");
      assert.match(warning ?? "", /environment/);
      assert.equal(existsSync(tokenFile(d)), false, "no token file is written");
      assert.equal((await getInfoRaw(d.httpPort, token)).status, 200);
      assert.equal(d.proc.exitCode, null, "the daemon keeps running");

      const rotations = auditRecords(auditFile).filter((rec) => rec.event === "token.rotate");
      assert.deepEqual(
        rotations.map((rec) => [rec.method, rec.outcome]),
        [
          ["RotateToken", "error"],
          ["RotateToken", "error"],
          ["SIGHUP", "error"],
        ],
      );
      for (const rec of rotations) assert.match(String(rec.reason), /^failed_precondition: /);
      assertNoToken(readFileSync(auditFile, "utf8"), [token], "the audit log");
      assertNoToken(d.output(), [token], "the daemon log");
    } finally {
      await d.stop();
    }
  });

  test("the token store's checks apply: a planted symlink or an open data dir stops the rotation", async () => {
    const d = await startDaemon();
    try {
      const old = d.token;
      const rotate = () => errorOf(clientFor(Daemon, "connect", d, old).rotateToken({}));
      const elsewhere = join(tempDir(), "elsewhere");
      writeFileSync(elsewhere, `${randomToken()}\n`, { mode: 0o600 });
      renameSync(tokenFile(d), `${tokenFile(d)}.bak`);
      symlinkSync(elsewhere, tokenFile(d));
      let err = await rotate();
      assert.equal(err.code, Code.FailedPrecondition);
      assert.match(err.rawMessage, /symlink/);
      assert.equal(readFileSync(elsewhere, "utf8").trim().length, 43, "the target is untouched");
      unlinkSync(tokenFile(d));
      renameSync(`${tokenFile(d)}.bak`, tokenFile(d));

      chmodSync(d.dataDir, 0o777);
      err = await rotate();
      assert.equal(err.code, Code.FailedPrecondition);
      assert.match(err.rawMessage, /writable by group or other/);
      chmodSync(d.dataDir, 0o700);

      // Nothing changed: the old token still works, and the next rotation does.
      assert.equal(readToken(d), old);
      assert.equal((await getInfoRaw(d.httpPort, old)).status, 200);
      assert.equal(await codeOf(clientFor(Daemon, "connect", d, old).rotateToken({})), "ok");
      assert.notEqual(readToken(d), old);
    } finally {
      await d.stop();
    }
  });

  test("rotation works in --public-only mode", async () => {
    const d = await startDaemon({ args: ["--public-only"] });
    try {
      const res = await clientFor(Daemon, "connect", d, d.token).rotateToken({});
      assert.equal(res.tokenPath, tokenFile(d));
      await assertRefused(d, d.token);
      assert.equal((await getInfoRaw(d.httpPort, readToken(d))).status, 200);
    } finally {
      await d.stop();
    }
  });
});
