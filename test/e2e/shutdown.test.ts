import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:http2";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { clientFor, codeOf, withToken } from "../helpers/clients.js";
import { removeDir, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";

/** The daemon's drain bound plus the cut and exit grace, with room for a loaded CI machine. */
const EXIT_BOUND_MS = 9_000;

function exitWithin(d: TestDaemon, ms: number) {
  return Promise.race([
    d.stop(),
    new Promise<"hung">((r) => setTimeout(() => r("hung"), ms).unref()),
  ]);
}

/** Clock ticks per second in `/proc/<pid>/stat` (Linux's USER_HZ, 100 on every architecture). */
const USER_HZ = 100;

/** The CPU time a process has used so far (Linux), in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

describe("shutdown", () => {
  // The trigger of a hang seen on Node 24: a gRPC client whose h2 session stays open after a
  // refused call and an accepted one. Node only half-closes such a socket on a graceful close.
  test("20 cycles of start, refused + accepted gRPC call, SIGTERM: each exits 0 and removes daemon.json", async () => {
    for (let i = 0; i < 20; i++) {
      const d = await startDaemon();
      const clients = [undefined, d.token].map((token) =>
        createClient(
          Daemon,
          createGrpcTransport({
            baseUrl: `http://${d.grpcAddr}`,
            interceptors: [withToken(token)],
          }),
        ),
      );
      assert.equal(
        await codeOf(clients[0]?.getInfo({}) ?? Promise.resolve()),
        Code.Unauthenticated,
      );
      assert.ok((await clients[1]?.getInfo({}))?.state !== undefined);
      const exit = await exitWithin(d, EXIT_BOUND_MS);
      if (exit === "hung") d.proc.kill("SIGKILL");
      assert.deepEqual(exit, { code: 0, signal: null }, `cycle ${i}`);
      assert.equal(existsSync(join(d.dataDir, "daemon.json")), false, `cycle ${i}`);
    }
  });

  for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
    test(`${protocol}: SIGTERM waits for a call whose client went away; its audit record reaches the file`, async () => {
      const dir = tempDir();
      const audit = join(dir, "audit.jsonl");
      const d = await startDaemon({ args: ["--audit-log", audit] });
      try {
        const daemon = clientFor(Daemon, "connect", d, d.token);
        const words = (await daemon.genMnemonic({})).mnemonic;
        await daemon.registerKey({ name: "main", mnemonic: words });
        // A password export spends about a second in its key derivation. Its client leaves
        // while it runs, so the daemon has no connection left when it is told to stop.
        const filePath = join(dir, "main.hmkey.json");
        const password = `export-pw-${Math.random().toString(36).slice(2)}`;
        const leave = new AbortController();
        const call = codeOf(
          clientFor(Daemon, protocol, d, d.token).exportKey(
            { name: "main", filePath, password },
            { signal: leave.signal },
          ),
        );
        // The derivation is the only work the daemon has: once it has spent 100 ms of CPU, the
        // call is surely running, and far from done.
        const pid = d.proc.pid ?? 0;
        const start = cpuMs(pid);
        for (let i = 0; i < 400 && cpuMs(pid) - start < 100; i++) {
          await new Promise((r) => setTimeout(r, 25));
        }
        leave.abort();
        assert.equal(await call, Code.Canceled);
        const exit = await exitWithin(d, EXIT_BOUND_MS);
        if (exit === "hung") d.proc.kill("SIGKILL");
        assert.deepEqual(exit, { code: 0, signal: null });
        const auditText = readFileSync(audit, "utf8");
        assert.equal(auditText.includes(password), false, "the password is not in the audit file");
        assert.equal(d.output().includes(password), false, "the password is not in the log");
        const records = auditText
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l) as { event: string; outcome: string });
        const logged = d
          .output()
          .split("\n")
          .filter((l) => l.includes('"audit":true'));
        assert.equal(logged.length, records.length, "the log and the file hold the same records");
        const exported = records.filter((r) => r.event === "key.export");
        assert.equal(exported.length, 1, "the export's record is in the audit file");
        assert.equal(existsSync(filePath), exported[0]?.outcome === "ok");
      } finally {
        if (d.proc.exitCode === null) d.proc.kill("SIGKILL");
        removeDir(dir);
      }
    });
  }

  test("a second SIGTERM during the drain exits 0 at once and still removes daemon.json", async () => {
    const d = await startDaemon();
    // An in-flight call that never finishes: the body never ends, so the drain has to wait.
    const session = connect(`http://${d.grpcAddr}`);
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/com.seed.daemon.v1alpha.Daemon/GetInfo",
      "content-type": "application/json",
      authorization: `Bearer ${d.token}`,
    });
    stream.on("error", () => {});
    stream.write("{");
    // Nothing answers a half-sent unary call, so give the headers time to reach the daemon.
    await new Promise((r) => setTimeout(r, 300));
    d.proc.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(d.proc.exitCode, null, "still draining after the first signal");
    const exit = await exitWithin(d, 2_000);
    if (exit === "hung") d.proc.kill("SIGKILL");
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(existsSync(join(d.dataDir, "daemon.json")), false);
    assert.match(d.output(), /second signal/);
    session.destroy();
  });
});
