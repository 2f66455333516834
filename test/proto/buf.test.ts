import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { ROOT } from "../helpers/daemon.js";

const BUF = join(ROOT, "node_modules", ".bin", "buf");
const env = { ...process.env, PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}` };

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return out;
}

test("buf lint passes", () => {
  const r = spawnSync(BUF, ["lint"], { cwd: ROOT, env, encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("buf generate would not change src/gen", () => {
  const work = mkdtempSync(join(tmpdir(), "seed-gen-"));
  cpSync(join(ROOT, "proto"), join(work, "proto"), { recursive: true });
  cpSync(join(ROOT, "buf.yaml"), join(work, "buf.yaml"));
  cpSync(join(ROOT, "buf.gen.yaml"), join(work, "buf.gen.yaml"));
  const r = spawnSync(BUF, ["generate"], { cwd: work, env, encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const fresh = files(join(work, "src", "gen"));
  const committed = files(join(ROOT, "src", "gen"));
  assert.deepEqual([...fresh.keys()].sort(), [...committed.keys()].sort());
  for (const [name, text] of fresh) {
    assert.equal(committed.get(name), text, `src/gen/${name} is stale: run npm run generate`);
  }
});

test("the protos name every RPC of the wire contract (docs/architecture.md)", () => {
  const daemon = readFileSync(join(ROOT, "proto/com/seed/daemon/v1alpha/daemon.proto"), "utf8");
  const docs = readFileSync(join(ROOT, "proto/com/seed/documents/v3alpha/documents.proto"), "utf8");
  const acl = readFileSync(
    join(ROOT, "proto/com/seed/documents/v3alpha/access_control.proto"),
    "utf8",
  );
  for (const m of [
    "GenMnemonic",
    "RegisterKey",
    "ImportKey",
    "ExportKey",
    "ListKeys",
    "UpdateKey",
    "DeleteKey",
    "DeleteAllKeys",
    "SignData",
    "GetInfo",
    "StoreBlobs",
    "PairOrigin",
    "ListPairedOrigins",
    "UnpairOrigin",
    "RotateToken",
  ])
    assert.match(daemon, new RegExp(`rpc ${m}\\(`), m);
  for (const m of [
    "CreateDocumentChange",
    "GetDocument",
    "ListDocuments",
    "ListDocumentChanges",
    "DeleteDocument",
  ]) {
    assert.match(docs, new RegExp(`rpc ${m}\\(`), m);
  }
  assert.match(docs, /rpc WatchDocuments\(WatchDocumentsRequest\) returns \(stream /);
  for (const m of [
    "CreateCapability",
    "GetCapability",
    "ListCapabilities",
    "ListCapabilitiesForDelegate",
  ]) {
    assert.match(acl, new RegExp(`rpc ${m}\\(`), m);
  }
  assert.match(daemon, /string signing_key_name = 1;\s+\/\/[^\n]*\n\s+bytes data = 2;/);
});
