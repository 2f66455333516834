import assert from "node:assert/strict";
import { test } from "node:test";
import { parseBearer } from "../../src/security/bearer.js";
import { allowedHostSet, checkHost } from "../../src/security/host-gate.js";

test("checkHost: exact loopback names with the port, case-insensitive", () => {
  const allowed = allowedHostSet(55001, []);
  for (const h of ["localhost:55001", "LocalHost:55001", "127.0.0.1:55001", "[::1]:55001"]) {
    assert.deepEqual(checkHost(h, allowed), { ok: true }, h);
  }
  for (const h of [
    "localhost",
    "localhost:55002",
    "localhost:055001",
    "localhost.:55001",
    "127.0.0.2:55001",
    "[::]:55001",
    "0.0.0.0:55001",
    "evil.example:55001",
    "localhost:55001@evil",
    " localhost:55001",
  ]) {
    assert.equal(checkHost(h, allowed).ok, false, h);
  }
  assert.deepEqual(checkHost(undefined, allowed), { ok: false, reason: "missing" });
  assert.deepEqual(checkHost("", allowed), { ok: false, reason: "missing" });
});

test("allowedHostSet: entries without a port get the listener's port; with one, only theirs", () => {
  const allowed = allowedHostSet(8080, ["daemon", "seed.example.com:443", "[fd00::1]"]);
  assert.equal(checkHost("daemon:8080", allowed).ok, true);
  assert.equal(checkHost("daemon:80", allowed).ok, false);
  assert.equal(checkHost("seed.example.com:443", allowed).ok, true);
  assert.equal(checkHost("seed.example.com:8080", allowed).ok, false);
  assert.equal(checkHost("[fd00::1]:8080", allowed).ok, true);
});

test("parseBearer: case-insensitive scheme, token68 only", () => {
  assert.equal(parseBearer("Bearer abc-_.~+/="), "abc-_.~+/=");
  assert.equal(parseBearer("bearer abc"), "abc");
  assert.equal(parseBearer("BEARER abc"), "abc");
  for (const bad of [
    undefined,
    null,
    "",
    "Bearer",
    "Bearer ",
    "Basic abc",
    "abc",
    "Bearer a b",
    "Bearer a,b",
    "Bearerabc",
  ]) {
    assert.equal(parseBearer(bad), undefined, String(bad));
  }
});
