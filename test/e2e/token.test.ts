import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { BIN, cleanEnv, randomToken, startDaemon, tempDir } from "../helpers/daemon.js";
import { getInfoRaw } from "../helpers/http.js";

/** Runs the daemon expecting it to refuse to start; returns exit code and stderr. */
function startExpectingFailure(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(
    process.execPath,
    [BIN, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", ...args],
    { env: cleanEnv(env), encoding: "utf8", timeout: 20_000 },
  );
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

function privateDir(): string {
  const dir = join(tempDir(), "data");
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

describe("token", () => {
  test("a generated token file is 0600 in a 0700 dir, and it is the token that works", async () => {
    const d = await startDaemon();
    try {
      const file = join(d.dataDir, "auth.token");
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(d.dataDir).mode & 0o777, 0o700);
      assert.equal(Buffer.from(d.token, "base64url").length, 32);
      assert.equal(statSync(join(d.dataDir, "daemon.json")).mode & 0o777, 0o600);
      const res = await getInfoRaw(d.httpPort, d.token);
      assert.equal(res.status, 200);
    } finally {
      await d.stop();
    }
  });

  test("the token file is kept across restarts", async () => {
    const d1 = await startDaemon();
    await d1.stop();
    const d2 = await startDaemon({ dataDir: d1.dataDir });
    try {
      assert.equal(d2.token, d1.token);
    } finally {
      await d2.stop();
    }
  });

  test("a symlinked token file is refused (exit 2)", () => {
    const dir = privateDir();
    const target = join(tempDir(), "elsewhere");
    writeFileSync(target, `${randomToken()}\n`, { mode: 0o600 });
    symlinkSync(target, join(dir, "auth.token"));
    const r = startExpectingFailure(["--data-dir", dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /symlink/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });

  test("a group- or other-readable token file is refused (exit 2)", () => {
    for (const mode of [0o640, 0o604, 0o660]) {
      const dir = privateDir();
      const file = join(dir, "auth.token");
      writeFileSync(file, `${randomToken()}\n`);
      chmodSync(file, mode);
      const r = startExpectingFailure(["--data-dir", dir]);
      assert.equal(r.code, 2, `mode ${mode.toString(8)}`);
      assert.match(r.stderr, /chmod 600/);
    }
  });

  test("a group/other-writable data dir is refused (exit 2)", () => {
    const dir = privateDir();
    chmodSync(dir, 0o777);
    const r = startExpectingFailure(["--data-dir", dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /writable by group or other/);
    assert.equal(existsSync(join(dir, "auth.token")), false);
  });

  test("SEED_DAEMON_AUTH_TOKEN is used and no token file is written", async () => {
    const token = randomToken();
    const d = await startDaemon({ envToken: token });
    try {
      assert.equal(existsSync(join(d.dataDir, "auth.token")), false);
      const ok = await getInfoRaw(d.httpPort, token);
      assert.equal(ok.status, 200);
    } finally {
      await d.stop();
    }
  });

  test("a short SEED_DAEMON_AUTH_TOKEN is refused (exit 2) and no file is written", () => {
    const dir = privateDir();
    for (const short of ["tok3n", "Q".repeat(31), " ".repeat(40)]) {
      const r = startExpectingFailure(["--data-dir", dir], { SEED_DAEMON_AUTH_TOKEN: short });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /SEED_DAEMON_AUTH_TOKEN/);
      if (short.trim() !== "") assert.ok(!r.stderr.includes(short), "the token is not echoed");
      assert.equal(existsSync(join(dir, "auth.token")), false);
    }
  });

  test("--auth-token-path puts the token where asked", async () => {
    const tokenDir = privateDir();
    const d = await startDaemon({ args: ["--auth-token-path", join(tokenDir, "t")] });
    try {
      assert.equal(statSync(join(tokenDir, "t")).mode & 0o777, 0o600);
      assert.equal(existsSync(join(d.dataDir, "auth.token")), false);
    } finally {
      await d.stop();
    }
  });
});
