/**
 * The pipeline checks the bearer token and hands its verdict to the RPC interceptor, so each
 * request hashes and compares the token once (issue 10's performance row): counted on the real
 * daemon, in process, for unary and streaming calls on both listeners and all three protocols.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { resolveConfig } from "../../src/config/config.js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { Documents } from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { createLogger } from "../../src/logger.js";
import { FullToken } from "../../src/security/token-store.js";
import { type RunningDaemon, startDaemon } from "../../src/server/daemon.js";
import { clientFor } from "../helpers/clients.js";
import { randomToken, removeDir, tempDir } from "../helpers/daemon.js";

const token = randomToken();
const dir = tempDir();
let daemon: RunningDaemon;
let checks = 0;
const verifyDigest = FullToken.prototype.verifyDigest;

before(async () => {
  const env = {
    SEED_DAEMON_AUTH_TOKEN: token,
    SEED_DAEMON_KEYCHAIN: "off",
    SEED_DAEMON_KEK: randomBytes(32).toString("base64"),
    HOME: dir,
    XDG_CONFIG_HOME: dir,
  };
  const config = resolveConfig(
    {
      dataDir: `${dir}/data`,
      httpAddr: "127.0.0.1:0",
      grpcAddr: "127.0.0.1:0",
      logLevel: "silent",
    },
    env,
  );
  daemon = await startDaemon(config, createLogger("silent"), env);
  FullToken.prototype.verifyDigest = function (this: FullToken, candidate: Buffer) {
    checks++;
    return verifyDigest.call(this, candidate);
  };
});

after(async () => {
  FullToken.prototype.verifyDigest = verifyDigest;
  await daemon?.close();
  removeDir(dir);
});

for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
  test(`${protocol}: one token check per unary call and per stream`, async () => {
    const daemonClient = clientFor(Daemon, protocol, daemon, token);
    checks = 0;
    await daemonClient.getInfo({});
    assert.equal(checks, 1, "GetInfo");

    checks = 0;
    const docs = clientFor(Documents, protocol, daemon, token);
    const ac = new AbortController();
    const stream = docs.watchDocuments({}, { signal: ac.signal });
    setTimeout(() => ac.abort(), 200).unref();
    try {
      for await (const _ of stream) break;
    } catch (err) {
      assert.equal(ConnectError.from(err).code, Code.Canceled);
    }
    assert.equal(checks, 1, "WatchDocuments");

    // A wrong token is still refused, after exactly one check.
    checks = 0;
    const wrong = clientFor(Daemon, protocol, daemon, randomToken());
    await assert.rejects(wrong.getInfo({}), (err) => {
      assert.equal(ConnectError.from(err).code, Code.Unauthenticated);
      return true;
    });
    assert.equal(checks, 1, "a refused call");
  });
}
