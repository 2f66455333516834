import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor, type Protocol } from "../helpers/clients.js";
import { startDaemon, type TestDaemon } from "../helpers/daemon.js";

// The daemon's own RPC adapter (src/server/rpc-adapter.ts) aborts a call's signal only when the
// client went away before the answer was complete. These tests check that it still does then:
// a watch whose client leaves must end on the daemon, or every watcher would stay forever.

const WATCH = "/com.seed.documents.v3alpha.Documents/WatchDocuments";

/** How many WatchDocuments calls the daemon has finished, by code, from /metrics. */
async function watchesEnded(d: TestDaemon): Promise<number> {
  const res = await fetch(`http://${d.httpAddr}/metrics`, {
    headers: { authorization: `Bearer ${d.token}` },
  });
  assert.equal(res.status, 200);
  let n = 0;
  for (const line of (await res.text()).split("\n")) {
    if (line.startsWith(`seed_daemon_requests_total{method="${WATCH}"`)) {
      n += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return n;
}

describe("RPC adapter: a client that goes away", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    await d.stop();
  });

  for (const protocol of ["connect", "grpc"] as const satisfies readonly Protocol[]) {
    test(`ends its server stream on the daemon (${protocol})`, async () => {
      const before = await watchesEnded(d);
      const abort = new AbortController();
      const account = principalToString(publicKeyFromSeed(randomBytes(32)));
      const stream = clientFor(Documents, protocol, d, d.token).watchDocuments(
        { account },
        { signal: abort.signal },
      );
      const reading = (async () => {
        for await (const _ of stream);
      })().catch(() => undefined);
      // Let the call reach its handler: an unrelated call on the other listener, then a pause.
      await clientFor(Daemon, protocol, d, d.token).getInfo({});
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await watchesEnded(d), before, "the watch is still running");
      abort.abort();
      await reading;
      let ended = before;
      for (let i = 0; ended === before && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
        ended = await watchesEnded(d);
      }
      assert.equal(ended, before + 1, "the daemon ended the watch once its client left");
    });
  }

  test("a unary call answered in full is counted ok, and the daemon keeps serving", async () => {
    for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
      const info = await clientFor(Daemon, protocol, d, d.token).getInfo({});
      assert.ok(info.version.length > 0);
    }
    const res = await fetch(`http://${d.httpAddr}/metrics`, {
      headers: { authorization: `Bearer ${d.token}` },
    });
    const text = await res.text();
    assert.match(
      text,
      /seed_daemon_requests_total\{method="\/com\.seed\.daemon\.v1alpha\.Daemon\/GetInfo",code="ok"\} [1-9]/,
    );
    assert.doesNotMatch(text, /GetInfo",code="canceled"/);
  });
});
