import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { generateMnemonic } from "../../src/identity/mnemonic.js";
import { clientFor } from "../helpers/clients.js";
import { removeDir, startDaemon, tempDir } from "../helpers/daemon.js";

const TOTAL = 60;
const CONCURRENCY = 4;
/** SIGKILL lands right after this many acknowledgements, with other calls still in flight. */
const KILL_AFTER = 20;

test("SIGKILL in the middle of a RegisterKey burst loses no acknowledged key and no integrity", async () => {
  const dir = tempDir();
  const dataDir = join(dir, "data");
  const d = await startDaemon({ dataDir });
  const client = clientFor(Daemon, "connect", d, d.token);
  const jobs = Array.from({ length: TOTAL }, (_, i) => ({
    name: `burst-${String(i).padStart(2, "0")}`,
    mnemonic: generateMnemonic(12),
  }));
  const acknowledged = new Map<string, string>();
  let failedAfterKill = 0;
  let inFlightAtKill = 0;
  let inFlight = 0;
  let next = 0;

  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      if (job === undefined) break;
      inFlight++;
      try {
        const key = await client.registerKey({ mnemonic: job.mnemonic, name: job.name });
        acknowledged.set(job.name, key.publicKey);
        if (acknowledged.size === KILL_AFTER) {
          // Synchronously, while the other workers' calls are on the wire or in the daemon.
          inFlightAtKill = inFlight - 1;
          d.proc.kill("SIGKILL");
        }
      } catch {
        failedAfterKill++;
      } finally {
        inFlight--;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const exit = await d.stop();
  assert.equal(exit.signal, "SIGKILL");
  assert.ok(acknowledged.size >= KILL_AFTER, `acknowledged ${acknowledged.size}`);
  assert.ok(failedAfterKill > 0, "some calls were cut off by the kill");
  assert.ok(inFlightAtKill > 0, "calls were in flight when the daemon was killed");

  const d2 = await startDaemon({ dataDir });
  try {
    const listed = new Map(
      (await clientFor(Daemon, "connect", d2, d2.token).listKeys({})).keys.map((k) => [
        k.name,
        k.publicKey,
      ]),
    );
    for (const [name, publicKey] of acknowledged) {
      assert.equal(listed.get(name), publicKey, `acknowledged key ${name} is there`);
    }
    // Anything else listed must be a burst key whose answer was lost in the kill.
    for (const name of listed.keys()) assert.match(name, /^burst-\d\d$/);
  } finally {
    assert.equal((await d2.stop()).code, 0);
  }

  const db = new Database(join(dataDir, "seed.db"), { readonly: true, fileMustExist: true });
  try {
    assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    const count = (db.prepare("SELECT count(*) AS n FROM keys").get() as { n: number }).n;
    assert.ok(count >= acknowledged.size);
  } finally {
    db.close();
    removeDir(dir);
  }
});
