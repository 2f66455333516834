import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDaemonFile, principalProofMessage } from "../src/wire.js";

describe("wire", () => {
  it("daemon.json: exactly the documented fields, anything else is no daemon", () => {
    const good = {
      pid: 42,
      httpAddr: "127.0.0.1:55001",
      grpcAddr: "127.0.0.1:55002",
      startTime: "2026-12-02T00:00:00.000Z",
      version: "0.1.0",
    };
    assert.deepEqual(parseDaemonFile(JSON.stringify({ ...good, extra: 1 })), good);
    for (const bad of [
      "",
      "{",
      "null",
      "[]",
      JSON.stringify({ ...good, pid: "42" }),
      JSON.stringify({ ...good, httpAddr: undefined }),
    ]) {
      assert.equal(parseDaemonFile(bad), undefined, bad);
    }
  });

  it("the login proof message is challenge, then the UTF-8 origin, then the nonce", () => {
    const m = principalProofMessage(Uint8Array.of(1, 2), "https://é.example", Uint8Array.of(9));
    assert.deepEqual(
      Buffer.from(m),
      Buffer.concat([Buffer.of(1, 2), Buffer.from("https://é.example", "utf8"), Buffer.of(9)]),
    );
  });
});
