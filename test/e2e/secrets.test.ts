import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { clientFor } from "../helpers/clients.js";
import { randomToken, startDaemon, tempDir } from "../helpers/daemon.js";
import { rawHttp1, rawHttp2 } from "../helpers/http.js";

test("neither the token nor a wrong token ever appears in the daemon's output or audit log", async () => {
  const audit = join(tempDir(), "audit.jsonl");
  const d = await startDaemon({ args: ["--log-level", "trace", "--audit-log", audit] });
  const wrong = randomToken();
  try {
    for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
      await clientFor(Daemon, protocol, d, d.token).getInfo({});
      await clientFor(Daemon, protocol, d, wrong)
        .getInfo({})
        .catch(() => undefined);
      await clientFor(Daemon, protocol, d, d.token)
        .signData({ signingKeyName: "k", data: new Uint8Array([1]) })
        .catch(() => undefined);
    }
    for (const send of [rawHttp1, rawHttp2]) {
      const port = send === rawHttp1 ? d.httpPort : d.grpcPort;
      for (const token of [d.token, wrong]) {
        await send({
          port,
          method: "POST",
          path: `/com.seed.daemon.v1alpha.Daemon/GetInfo?token=${token}`,
          headers: {
            authorization: `Bearer ${token}`,
            cookie: `t=${token}`,
            "content-type": "application/json",
          },
          body: "{}",
        });
        await send({
          port,
          path: "/nope",
          host: `evil:${port}`,
          headers: { authorization: `Bearer ${token}` },
        });
        await send({
          port,
          path: "/metrics",
          headers: { authorization: `Bearer ${token}` },
        });
      }
    }
  } finally {
    assert.equal((await d.stop()).code, 0);
  }
  const out = d.output();
  assert.ok(out.includes('"daemon ready"'), "output was captured");
  assert.ok(
    out.includes('"level":10') || out.includes('"level":20'),
    "debug/trace lines were captured",
  );
  for (const secret of [d.token, wrong]) {
    assert.equal(out.includes(secret), false, "token in daemon output");
    assert.equal(out.includes(secret.slice(0, 16)), false, "token prefix in daemon output");
    assert.equal(readFileSync(audit, "utf8").includes(secret), false, "token in audit log");
  }
});
