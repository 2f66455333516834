/**
 * What a new user meets first: --help, a busy port, the ready line at a terminal, and a warning
 * when pairing a plain-http origin.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { isPlainHttpRemote } from "../../src/cli/origins.js";
import { readyBanner } from "../../src/cli/run.js";
import {
  BIN,
  cleanEnv,
  randomToken,
  removeDir,
  runCli,
  startDaemon,
  tempDir,
} from "../helpers/daemon.js";

describe("first run", () => {
  test("--help shows the defaults and no empty-list noise", async () => {
    const r = await runCli(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /default\s+127\.0\.0\.1:55001/);
    assert.match(r.stdout, /default\s+127\.0\.0\.1:55002/);
    assert.match(r.stdout, /--data-dir[\s\S]*?default\s+\//);
    assert.doesNotMatch(r.stdout, /\(default: \[\]\)/);
  });

  test("a busy port names the address and the flag, in one line, exit 2", async () => {
    const first = await startDaemon();
    try {
      const dir = tempDir();
      const r = await runCli([
        "--data-dir",
        join(dir, "data"),
        "--http-addr",
        first.httpAddr,
        "--grpc-addr",
        "127.0.0.1:0",
      ]);
      assert.equal(r.code, 2, r.stderr);
      const text = `${r.stdout}${r.stderr}`;
      assert.match(text, new RegExp(`cannot listen on ${first.httpAddr.replace(/\./g, "\\.")}`));
      assert.match(text, /in use/);
      assert.match(text, /--http-addr/);
      removeDir(dir);
    } finally {
      await first.stop();
    }
  });

  test("the ready line names addresses, data dir and where the token is, never the token", () => {
    const line = readyBanner({
      httpAddr: "127.0.0.1:55001",
      grpcAddr: "127.0.0.1:55002",
      dataDir: "/d",
      tokenPath: "/d/auth.token",
      tokenFromEnv: false,
    });
    assert.match(line, /http:\/\/127\.0\.0\.1:55001/);
    assert.match(line, /127\.0\.0\.1:55002/);
    assert.match(line, /\/d\/auth\.token/);
    assert.equal(line.includes("\n"), false);
    assert.match(
      readyBanner({
        httpAddr: "a:1",
        grpcAddr: "a:2",
        dataDir: "/d",
        tokenPath: "/d/auth.token",
        tokenFromEnv: true,
      }),
      /SEED_DAEMON_AUTH_TOKEN/,
    );
  });

  test("at a terminal the daemon prints that line once ready (through script(1))", {
    skip: existsSync("/usr/bin/script") ? false : "script(1) is not installed",
  }, () => {
    const dir = tempDir();
    const token = randomToken();
    const data = join(dir, "data");
    // script gives the daemon a pseudo-terminal; timeout stops it after it is up.
    const cmd = `timeout -s TERM 4 ${process.execPath} ${BIN} --data-dir ${data} --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0`;
    const r = spawnSync("script", ["-qec", cmd, "/dev/null"], {
      env: cleanEnv({ SEED_DAEMON_AUTH_TOKEN: token }),
      encoding: "utf8",
      timeout: 20_000,
    });
    const out = `${r.stdout}${r.stderr}`;
    assert.match(out, /seed-daemon ready: http:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, /the token comes from SEED_DAEMON_AUTH_TOKEN/);
    assert.equal(out.includes(token), false);
    removeDir(dir);
  });

  test("pairing a plain-http origin that is not loopback warns", async () => {
    assert.equal(isPlainHttpRemote("http://app.example"), true);
    assert.equal(isPlainHttpRemote("http://192.168.1.5:8080"), true);
    for (const ok of [
      "https://app.example",
      "http://localhost:3000",
      "http://127.0.0.1:8080",
      "http://[::1]:1",
    ]) {
      assert.equal(isPlainHttpRemote(ok), false, ok);
    }
    const d = await startDaemon();
    try {
      const warned = await runCli([
        "origins",
        "pair",
        "http://app.example",
        "--data-dir",
        d.dataDir,
      ]);
      assert.equal(warned.code, 0, warned.stderr);
      assert.match(warned.stderr, /not HTTPS/);
      const quiet = await runCli([
        "origins",
        "pair",
        "https://app.example",
        "--data-dir",
        d.dataDir,
      ]);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.doesNotMatch(quiet.stderr, /not HTTPS/);
    } finally {
      await d.stop();
    }
  });
});
