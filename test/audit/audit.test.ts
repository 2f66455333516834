import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { AuditLog, auditSafe } from "../../src/audit/audit.js";
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
