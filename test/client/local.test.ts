import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  createDaemonClients,
  createDaemonTransport,
  LocalDaemonError,
  localTokenSource,
  readLocalDaemon,
} from "../../src/client/index.js";
import { codeOf } from "../helpers/clients.js";
import { startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";

const posix = process.platform !== "win32";

/**
 * A daemon with a token file for the tests of one suite, handed to `use` once it runs. Each suite
 * has its own: the rotation tests change the token.
 */
function daemonForSuite(use: (d: TestDaemon) => void): void {
  let d: TestDaemon | undefined;
  before(async () => {
    d = await startDaemon();
    use(d);
  });
  after(async () => {
    await d?.stop();
  });
}

describe("readLocalDaemon", () => {
  let d: TestDaemon;
  let tokenFile: string;
  daemonForSuite((started) => {
    d = started;
    tokenFile = join(d.dataDir, "auth.token");
  });

  /** Asserts a LocalDaemonError with this reason and message, which never holds the token. */
  function assertRefused(fn: () => unknown, reason: string, pattern: RegExp): void {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof LocalDaemonError, String(err));
      assert.equal(err.reason, reason, err.message);
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes(d.token), "the message holds no token");
      assert.equal(err.message.split("\n").length, 1);
      return true;
    });
  }

  test("finds a daemon started with a token file, and its clients work", async () => {
    const found = readLocalDaemon({ dataDir: d.dataDir, env: {} });
    assert.deepEqual(
      { ...found },
      {
        baseUrl: `http://${d.httpAddr}`,
        grpcUrl: `http://${d.grpcAddr}`,
        token: d.token,
        pid: d.proc.pid,
        version: found.version,
      },
    );
    assert.match(found.version, /^\d+\.\d+\.\d+/);
    const clients = createDaemonClients(
      createDaemonTransport({ baseUrl: found.baseUrl, token: found.token }),
    );
    assert.equal((await clients.daemon.getInfo({})).version, found.version);
    const grpc = createDaemonClients(
      createDaemonTransport({ baseUrl: found.grpcUrl, token: found.token, protocol: "grpc" }),
    );
    assert.equal((await grpc.daemon.getInfo({})).version, found.version);
  });

  test("SEED_DAEMON_DATA_DIR, SEED_DAEMON_AUTH_TOKEN and SEED_DAEMON_AUTH_TOKEN_PATH are read from env", () => {
    const viaEnv = readLocalDaemon({ env: { SEED_DAEMON_DATA_DIR: d.dataDir } });
    assert.equal(viaEnv.token, d.token);
    const envToken = "e".repeat(43);
    assert.equal(
      readLocalDaemon({ dataDir: d.dataDir, env: { SEED_DAEMON_AUTH_TOKEN: envToken } }).token,
      envToken,
    );
    const other = join(tempDir(), "tokens");
    mkdirSync(other, { mode: 0o700 });
    writeFileSync(join(other, "t"), `${"p".repeat(43)}\n`, { mode: 0o600 });
    assert.equal(
      readLocalDaemon({
        dataDir: d.dataDir,
        env: { SEED_DAEMON_AUTH_TOKEN_PATH: join(other, "t") },
      }).token,
      "p".repeat(43),
    );
    assertRefused(
      () => readLocalDaemon({ dataDir: d.dataDir, env: { SEED_DAEMON_AUTH_TOKEN: "short" } }),
      "invalid",
      /SEED_DAEMON_AUTH_TOKEN is shorter than 32/,
    );
  });

  test("refuses a group-readable token file", { skip: !posix }, () => {
    chmodSync(tokenFile, 0o640);
    try {
      assertRefused(
        () => readLocalDaemon({ dataDir: d.dataDir, env: {} }),
        "unsafe",
        /token file .*auth\.token is accessible by group or other users; run: chmod 600/,
      );
    } finally {
      chmodSync(tokenFile, 0o600);
    }
  });

  test("refuses a symlinked token file", { skip: !posix }, () => {
    const real = join(d.dataDir, "auth.token.real");
    renameSync(tokenFile, real);
    symlinkSync(real, tokenFile);
    try {
      assertRefused(
        () => readLocalDaemon({ dataDir: d.dataDir, env: {} }),
        "unsafe",
        /token file .*auth\.token is a symlink; refusing to follow it/,
      );
    } finally {
      renameSync(real, tokenFile);
    }
    // The same through SEED_DAEMON_AUTH_TOKEN_PATH.
    const link = join(tempDir(), "link.token");
    symlinkSync(tokenFile, link);
    assertRefused(
      () => readLocalDaemon({ dataDir: d.dataDir, env: { SEED_DAEMON_AUTH_TOKEN_PATH: link } }),
      "unsafe",
      /is a symlink/,
    );
  });

  test("refuses a data dir other users can write into", { skip: !posix }, () => {
    chmodSync(d.dataDir, 0o770);
    try {
      assertRefused(
        () => readLocalDaemon({ dataDir: d.dataDir, env: {} }),
        "unsafe",
        /data dir .* is writable by group or other users; run: chmod 700/,
      );
    } finally {
      chmodSync(d.dataDir, 0o700);
    }
  });

  test("no token file and no SEED_DAEMON_AUTH_TOKEN: no-token", () => {
    const away = `${tokenFile}.away`;
    renameSync(tokenFile, away);
    try {
      assertRefused(
        () => readLocalDaemon({ dataDir: d.dataDir, env: {} }),
        "no-token",
        /no token: .*auth\.token does not exist; set SEED_DAEMON_AUTH_TOKEN/,
      );
    } finally {
      renameSync(away, tokenFile);
    }
  });

  test("no data dir, no daemon.json, or a stale one: not-running", () => {
    const root = tempDir();
    assertRefused(
      () => readLocalDaemon({ dataDir: join(root, "missing"), env: {} }),
      "not-running",
      /no seed-daemon data dir at/,
    );
    const empty = join(root, "empty");
    mkdirSync(empty, { mode: 0o700 });
    assertRefused(
      () => readLocalDaemon({ dataDir: empty, env: {} }),
      "not-running",
      /no seed-daemon is running for .*empty \(no daemon\.json\)/,
    );
    // A pid that has certainly exited: a child we ran to completion.
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    writeFileSync(
      join(empty, "daemon.json"),
      JSON.stringify({
        pid: gone,
        httpAddr: "127.0.0.1:1",
        grpcAddr: "127.0.0.1:2",
        startTime: new Date().toISOString(),
        version: "0.0.0",
      }),
      { mode: 0o600 },
    );
    assertRefused(
      () => readLocalDaemon({ dataDir: empty, env: {} }),
      "not-running",
      new RegExp(`names pid ${gone}, which has exited`),
    );
    writeFileSync(join(empty, "daemon.json"), "{}", { mode: 0o600 });
    assertRefused(
      () => readLocalDaemon({ dataDir: empty, env: {} }),
      "invalid",
      /is not a seed-daemon daemon\.json/,
    );
  });
});

describe("localTokenSource", () => {
  let d: TestDaemon;
  let tokenFile: string;
  daemonForSuite((started) => {
    d = started;
    tokenFile = join(d.dataDir, "auth.token");
  });

  test("a client built on it keeps working across a rotation; one built on the token string does not", async () => {
    const baseUrl = `http://${d.httpAddr}`;
    const source = localTokenSource({ dataDir: d.dataDir, env: {} });
    const following = createDaemonClients(createDaemonTransport({ baseUrl, token: source }));
    const fixed = createDaemonClients(createDaemonTransport({ baseUrl, token: d.token }));
    assert.equal(await codeOf(following.daemon.getInfo({})), "ok");
    assert.equal(await codeOf(fixed.daemon.getInfo({})), "ok");

    await following.daemon.rotateToken({});
    const rotated = readFileSync(tokenFile, "utf8").trim();
    assert.notEqual(rotated, d.token);
    assert.equal(await codeOf(fixed.daemon.getInfo({})), Code.Unauthenticated);
    assert.equal(await codeOf(following.daemon.getInfo({})), "ok");
    assert.ok(source() === rotated, "the source gives the new token");
    // gRPC over h2c follows it too.
    const grpc = createDaemonClients(
      createDaemonTransport({ baseUrl: `http://${d.grpcAddr}`, token: source, protocol: "grpc" }),
    );
    await following.daemon.rotateToken({});
    assert.equal(await codeOf(grpc.daemon.getInfo({})), "ok");
  });

  test("a token file that became unsafe fails the next call, naming the file, not the token", {
    skip: !posix,
  }, async () => {
    const source = localTokenSource({ dataDir: d.dataDir, env: {} });
    const clients = createDaemonClients(
      createDaemonTransport({ baseUrl: `http://${d.httpAddr}`, token: source }),
    );
    assert.equal(await codeOf(clients.daemon.getInfo({})), "ok");
    const token = readFileSync(tokenFile, "utf8").trim();
    chmodSync(tokenFile, 0o640);
    try {
      const err = await clients.daemon.getInfo({}).then(
        () => assert.fail("expected the call to fail"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Error);
      assert.match(err.message, /accessible by group or other users/);
      assert.ok(!err.message.includes(token), "the message holds no token");
    } finally {
      chmodSync(tokenFile, 0o600);
    }
    assert.equal(await codeOf(clients.daemon.getInfo({})), "ok");
  });

  test("SEED_DAEMON_AUTH_TOKEN wins over the file, as for readLocalDaemon; an empty answer is refused", async () => {
    const fromEnv = "e".repeat(43);
    assert.ok(
      localTokenSource({ dataDir: d.dataDir, env: { SEED_DAEMON_AUTH_TOKEN: fromEnv } })() ===
        fromEnv,
    );
    const empty = createDaemonClients(
      createDaemonTransport({ baseUrl: `http://${d.httpAddr}`, token: () => "" }),
    );
    await assert.rejects(empty.daemon.getInfo({}), /token must be the daemon's bearer token/);
  });
});
