import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Code } from "@connectrpc/connect";
import Database from "better-sqlite3";
import { storageFailure, toConnectError } from "../../src/errors.js";

/** Runs `fn` and returns what it threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail("expected a throw");
}

test("a full SQLite database is resource_exhausted with a fixed message", () => {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE t (x BLOB)");
  db.pragma("max_page_count = 8");
  const insert = db.prepare("INSERT INTO t VALUES (?)");
  const err = thrown(() => {
    for (let i = 0; i < 100; i++) insert.run(Buffer.alloc(4096));
  });
  db.close();
  assert.equal((err as { code?: string }).code, "SQLITE_FULL");
  const ce = toConnectError(err);
  assert.equal(ce.code, Code.ResourceExhausted);
  assert.equal(ce.rawMessage, "the daemon's disk is full: nothing was written");
  assert.equal(storageFailure(err)?.cause, "SQLITE_FULL");
});

test("a read-only SQLite database is unavailable", () => {
  const dir = mkdtempSync(join(tmpdir(), "seed-errors-"));
  try {
    const path = join(dir, "x.db");
    new Database(path).exec("CREATE TABLE t (x)");
    const ro = new Database(path, { readonly: true });
    const err = thrown(() => ro.prepare("INSERT INTO t VALUES (1)").run());
    ro.close();
    const ce = toConnectError(err);
    assert.equal(ce.code, Code.Unavailable);
    assert.equal(ce.rawMessage, "the daemon's data directory is read-only: nothing was written");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ENOSPC from a file write is resource_exhausted, and names no path", {
  skip: process.platform !== "linux" && "needs /dev/full",
}, () => {
  const err = thrown(() => writeFileSync("/dev/full", "x"));
  assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
  const ce = toConnectError(err);
  assert.equal(ce.code, Code.ResourceExhausted);
  assert.ok(!ce.message.includes("/dev/full"));
});

test("other SQLite and file errors stay internal, with no library text", () => {
  const db = new Database(":memory:");
  db.exec("CREATE TABLE t (x UNIQUE)");
  db.prepare("INSERT INTO t VALUES (1)").run();
  const constraint = thrown(() => db.prepare("INSERT INTO t VALUES (1)").run());
  db.close();
  const enoent = thrown(() => writeFileSync("/nonexistent-dir-for-test/x", "x"));
  // An error that only looks like a system error (no syscall) is not classified either.
  const lookalike = Object.assign(new Error("ENOSPC"), { code: "ENOSPC" });
  for (const err of [constraint, enoent, lookalike]) {
    assert.equal(storageFailure(err), undefined);
    const ce = toConnectError(err);
    assert.equal(ce.code, Code.Internal);
    assert.equal(ce.rawMessage, "internal error");
  }
});
