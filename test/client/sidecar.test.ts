import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createDaemonClients,
  createDaemonTransport,
  SpawnDaemonError,
  spawnDaemon,
} from "../../src/client/index.js";
import { BIN, cleanEnv, ROOT, tempDir } from "../helpers/daemon.js";

const FIXTURES = join(import.meta.dirname, "fixtures");
const VECTOR = [...Array<string>(11).fill("abandon"), "about"];

/** Every regular file under a dir, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

function assertNotInFiles(dir: string, secret: string): void {
  const files = filesUnder(dir);
  assert.ok(files.length > 0, "the data dir has files to check");
  for (const file of files) {
    assert.ok(!readFileSync(file).includes(secret), `token found in ${file}`);
  }
}

/** Linux: a zombie (exited, not yet reaped by init) counts as gone. Elsewhere: signal 0. */
function isRunning(pid: number): boolean {
  if (process.platform === "linux") {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      return state !== "Z" && state !== "X";
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe("spawnDaemon", () => {
  test("starts a daemon on free ports; typed clients work; the token is in memory only; stop() ends a watch and resolves 0", async () => {
    const dataDir = join(tempDir("seed-sidecar-"), "data");
    const lines: string[] = [];
    const d = await spawnDaemon({
      dataDir,
      env: cleanEnv(),
      output: (line) => lines.push(line),
    });
    let stopped = false;
    try {
      assert.match(d.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(d.grpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(d.httpUrl, d.grpcUrl);
      assert.match(d.version, /^\d+\.\d+\.\d+/);
      assert.match(d.token, /^[A-Za-z0-9_-]{43}$/, "32 random bytes, base64url");
      const file = JSON.parse(readFileSync(join(dataDir, "daemon.json"), "utf8"));
      assert.equal(file.pid, d.pid);
      assert.equal(`http://${file.httpAddr}`, d.httpUrl);
      assert.equal(`http://${file.grpcAddr}`, d.grpcUrl);

      const info = await d.clients.daemon.getInfo({});
      assert.equal(info.version, d.version);
      // The same token over the other protocols, and the h2c listener.
      for (const [baseUrl, protocol, httpVersion] of [
        [d.httpUrl, "grpc-web", "1.1"],
        [d.grpcUrl, "grpc", "2"],
        [d.grpcUrl, "connect", "2"],
      ] as const) {
        const c = createDaemonClients(
          createDaemonTransport({ baseUrl, token: d.token, protocol, httpVersion }),
        );
        assert.equal((await c.daemon.getInfo({})).version, d.version, protocol);
      }
      const wrong = createDaemonClients(
        createDaemonTransport({ baseUrl: d.httpUrl, token: "x".repeat(43) }),
      );
      await assert.rejects(
        wrong.daemon.getInfo({}),
        (err) => ConnectError.from(err).code === Code.Unauthenticated,
      );

      // A stream: the interceptor puts the token on it too, and the daemon's stop ends it.
      const key = await d.clients.daemon.registerKey({ name: "alice", mnemonic: VECTOR });
      const seen: string[] = [];
      const watching = (async () => {
        for await (const ev of d.clients.documents.watchDocuments({ account: "" })) {
          seen.push(ev.path);
        }
        return "ended";
      })();
      for (let i = 0; seen.length === 0 && i < 100; i++) {
        await d.clients.documents.createDocumentChange({
          account: key.accountId,
          path: `/doc${i}`,
          signingKeyName: "alice",
          changes: [{ op: { case: "setMetadata", value: { key: "title", value: `t${i}` } } }],
        });
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(seen.length > 0, "the watch saw a document");
      const caps = await d.clients.accessControl.listCapabilities({
        account: key.accountId,
        path: "*",
      });
      assert.deepEqual(caps.capabilities, []);

      // The token is in memory and the child's environment only.
      assert.ok(
        !Object.values(process.env).some((v) => v?.includes(d.token)),
        "not in the parent's process.env",
      );
      if (process.platform === "linux") {
        for (const pid of [d.pid, process.pid]) {
          const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
          assert.ok(!cmdline.includes(d.token), `not in /proc/${pid}/cmdline`);
          if (pid === d.pid) {
            assert.ok(cmdline.split("\0").includes("--exit-with-parent"), "the child's argv");
          }
        }
      }
      assertNotInFiles(dataDir, d.token);

      const code = await d.stop();
      stopped = true;
      assert.equal(code, 0);
      assert.equal(await watching, "ended", "the stream ended cleanly");
      assert.equal(await d.exited, 0);
      assert.equal(await d.stop(), 0, "stop() again returns the same result");
      assert.equal(existsSync(join(dataDir, "daemon.json")), false);
      assertNotInFiles(dataDir, d.token);
      assert.ok(
        lines.some((l) => l.includes('"daemon ready"')),
        "the child's logs were passed on",
      );
      assert.ok(lines.some((l) => l.includes('"stopped"')));
      for (const line of lines) assert.ok(!line.includes(d.token), `token in output: ${line}`);
    } finally {
      if (!stopped) await d.stop();
    }
  });

  test("killing the parent with SIGKILL ends the child within 5 s, cleanly", async () => {
    const dataDir = join(tempDir("seed-sidecar-"), "data");
    const parent = spawn(
      process.execPath,
      ["--import", "tsx", join(FIXTURES, "parent.ts"), dataDir],
      { cwd: ROOT, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    parent.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    const childPid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no pid in 30 s: ${err}`)), 30_000);
      parent.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        const m = /^(\d+)\n/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      parent.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`parent exited with ${code}: ${err}`));
      });
    });
    try {
      assert.ok(isRunning(childPid), "the child runs");
      assert.ok(existsSync(join(dataDir, "daemon.json")));
      parent.kill("SIGKILL");
      assert.ok(await waitFor(() => !isRunning(childPid), 5_000), "the child ended within 5 s");
      assert.equal(
        existsSync(join(dataDir, "daemon.json")),
        false,
        "it shut down gracefully (daemon.json removed)",
      );
    } finally {
      if (isRunning(childPid)) process.kill(childPid, "SIGKILL");
    }
  });

  test("a child that exits before it is ready rejects with its last stderr lines, token redacted", async () => {
    const dataDir = join(tempDir("seed-sidecar-"), "data");
    const err = await spawnDaemon({
      dataDir,
      binPath: join(FIXTURES, "exits-early.mjs"),
      output: "ignore",
    }).then(
      () => assert.fail("resolved"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SpawnDaemonError);
    assert.equal(err.exitCode, 3);
    assert.deepEqual(err.stderr, ["first line", "fatal: token=[redacted]"]);
    assert.match(err.message, /exited with code 3 before it was ready:\nfirst line\n/);
  });

  test("a second daemon on the same data dir fails with the daemon's own message (exit 2)", async () => {
    const dataDir = join(tempDir("seed-sidecar-"), "data");
    const first = await spawnDaemon({ dataDir, env: cleanEnv(), output: "ignore" });
    try {
      const err = await spawnDaemon({ dataDir, env: cleanEnv(), output: "ignore" }).then(
        () => assert.fail("resolved"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SpawnDaemonError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /another seed-daemon \(pid \d+\)/);
      assert.ok(!err.message.includes(first.token));
    } finally {
      assert.equal(await first.stop(), 0);
    }
  });

  test("a child that is not ready in time is killed and the error says so", async () => {
    const dataDir = join(tempDir("seed-sidecar-"), "data");
    const started = Date.now();
    const err = await spawnDaemon({
      dataDir,
      binPath: join(FIXTURES, "never-ready.mjs"),
      readyTimeoutMs: 500,
      output: "ignore",
    }).then(
      () => assert.fail("resolved"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SpawnDaemonError);
    assert.match(err.message, /not ready within 500 ms:\nstarting, slowly/);
    assert.ok(Date.now() - started < 5_000);
  });

  test("options the launcher owns, and bad ones, are refused before anything starts", async () => {
    for (const opts of [
      { dataDir: "" },
      { dataDir: "/tmp/x", args: ["--data-dir", "/elsewhere"] },
      { dataDir: "/tmp/x", args: ["--ready-fd=4"] },
      { dataDir: "/tmp/x", args: ["--exit-with-parent"] },
      { dataDir: "/tmp/x", readyTimeoutMs: -1 },
    ]) {
      await assert.rejects(spawnDaemon(opts), TypeError, JSON.stringify(opts));
    }
  });
});

describe("daemon launcher flags", () => {
  function run(args: string[], stdin: "pipe" | "ignore" = "ignore") {
    const dataDir = join(tempDir("seed-sidecar-"), "data");
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        "--data-dir",
        dataDir,
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        ...args,
      ],
      { env: cleanEnv(), encoding: "utf8", timeout: 20_000, stdio: [stdin, "pipe", "pipe"] },
    );
    return { code: r.status, stderr: r.stderr, dataDir };
  }

  test("--help documents --ready-fd and --exit-with-parent", () => {
    const r = spawnSync(process.execPath, [BIN, "--help"], { encoding: "utf8", env: cleanEnv() });
    assert.match(r.stdout, /--ready-fd <fd>/);
    assert.match(r.stdout, /--exit-with-parent/);
  });

  test("a bad --ready-fd, or --exit-with-parent without a pipe on stdin, exits 2 before binding", () => {
    for (const [args, pattern] of [
      [["--ready-fd", "abc"], /--ready-fd: expected a file descriptor number/],
      [["--ready-fd", "0"], /--ready-fd: expected a file descriptor number/],
      [["--ready-fd", "987"], /--ready-fd: 987 is not an open file descriptor/],
      [["--exit-with-parent"], /--exit-with-parent: stdin must be a pipe/],
    ] as const) {
      const r = run([...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(existsSync(join(r.dataDir, "daemon.json")), false);
    }
  });

  test("--ready-fd writes exactly one JSON line once daemon.json is in place, then closes", async () => {
    const dataDir = join(tempDir("seed-sidecar-"), "data");
    const proc = spawn(
      process.execPath,
      [
        BIN,
        "--data-dir",
        dataDir,
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--ready-fd",
        "3",
      ],
      {
        env: cleanEnv({ SEED_DAEMON_AUTH_TOKEN: "t".repeat(43) }),
        stdio: ["ignore", "ignore", "pipe", "pipe"],
      },
    );
    const fd3 = proc.stdio[3] as NodeJS.ReadableStream;
    let text = "";
    fd3.setEncoding("utf8");
    fd3.on("data", (s: string) => {
      text += s;
    });
    const ended = new Promise<void>((r) => fd3.once("end", () => r()));
    try {
      await Promise.race([
        ended,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("no end on fd 3")), 20_000).unref(),
        ),
      ]);
      assert.ok(text.endsWith("\n"));
      assert.equal(text.split("\n").length, 2, "one line");
      const line = JSON.parse(text);
      const file = JSON.parse(readFileSync(join(dataDir, "daemon.json"), "utf8"));
      assert.deepEqual(line, {
        ready: true,
        httpAddr: file.httpAddr,
        grpcAddr: file.grpcAddr,
        pid: proc.pid,
        version: file.version,
      });
      assert.equal(statSync(join(dataDir, "daemon.json")).isFile(), true);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        await new Promise((r) => proc.once("exit", r));
      }
    }
  });
});
