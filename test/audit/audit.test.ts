import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { AuditLog, auditSafe, subjectFields } from "../../src/audit/audit.js";
import { tempDir } from "../helpers/daemon.js";

test("auditSafe escapes everything outside printable ASCII and caps the length", () => {
  assert.equal(auditSafe("key-1"), "key-1");
  assert.equal(auditSafe(undefined), undefined);
  assert.equal(auditSafe("a\nb"), "a\\u{a}b");
  assert.equal(auditSafe("evil\u202etxt.exe"), "evil\\u{202e}txt.exe");
  assert.equal(auditSafe("kéy"), "k\\u{e9}y");
  const long = auditSafe("x".repeat(5000)) ?? "";
  assert.ok(long.length < 600 && long.endsWith("..."));
});

test("every record field is escaped, so a caller's input cannot forge an audit line", () => {
  const file = join(tempDir(), "audit.jsonl");
  const lines: string[] = [];
  const logger = pino({ level: "info" }, { write: (l: string) => lines.push(l) });
  const audit = new AuditLog(logger, file);
  audit.record({
    event: "key.register",
    method: "RegisterKey",
    key_name: 'k"}\n{"event":"forged',
    principal: "z6Mk\u202e",
    origin: "https://a.example",
    outcome: "error",
    reason: "invalid_argument: bad\r\nname",
  });
  audit.close();
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const fileLines = readFileSync(file, "utf8").trimEnd().split("\n");
  assert.equal(fileLines.length, 1, "one record, one line");
  const rec = JSON.parse(fileLines[0] ?? "");
  assert.equal(rec.key_name, 'k"}\\u{a}{"event":"forged');
  assert.equal(rec.principal, "z6Mk\\u{202e}");
  assert.equal(rec.reason, "invalid_argument: bad\\u{d}\\u{a}name");
  assert.equal(rec.origin, "https://a.example");
  assert.ok(!Number.isNaN(Date.parse(rec.time)));
  assert.equal(lines.length, 1);
  const logged = JSON.parse(lines[0] ?? "");
  assert.equal(logged.audit, true);
  assert.equal(logged.key_name, rec.key_name);
});

test("a document read fits the record: account, path, outcome and granting capability, escaped", () => {
  const file = join(tempDir(), "audit.jsonl");
  const audit = new AuditLog(pino({ level: "silent" }), file);
  const { fields, reasonSuffix } = subjectFields({
    kind: "document",
    account: "z6MkAccount",
    path: "/private/\u202enotes",
    capability: "bafyCap",
  });
  assert.equal(reasonSuffix, undefined);
  audit.record({
    ...fields,
    event: "document.read",
    method: "GetDocument",
    principal: "z6MkReader",
    outcome: "granted",
  });
  audit.record({
    ...subjectFields({ kind: "document", account: "z6MkAccount", path: "" }).fields,
    event: "document.read",
    method: "GetDocument",
    outcome: "denied",
  });
  audit.close();
  const [granted, denied] = readFileSync(file, "utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(granted.event, "document.read");
  assert.equal(granted.principal, "z6MkReader");
  assert.equal(granted.account, "z6MkAccount");
  assert.equal(granted.path, "/private/\\u{202e}notes");
  assert.equal(granted.outcome, "granted");
  assert.equal(granted.capability, "bafyCap");
  assert.equal(denied.outcome, "denied");
  assert.equal(denied.path, "", "the home document's path is recorded, not dropped");
  assert.equal(denied.capability, undefined);
});

test("key and origin subjects map onto the fields records always had", () => {
  assert.deepEqual(subjectFields({ kind: "key", name: "main", file: "/k.json" }), {
    fields: { key_name: "main" },
    reasonSuffix: 'file "/k.json"',
  });
  assert.deepEqual(subjectFields({ kind: "origin", origin: "https://a.example" }).fields, {
    origin: "https://a.example",
  });
});
