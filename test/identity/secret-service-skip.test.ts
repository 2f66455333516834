import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ROOT } from "../helpers/daemon.js";

/** Runs the keychain suite on a machine where no Secret Service tools can be found. */
function runKeychainSuite(extra: Record<string, string>) {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // NODE_TEST_CONTEXT would make the child report into this run instead of printing.
    if (k !== "CI" && k !== "SEED_TEST_REQUIRE_SECRET_SERVICE" && k !== "NODE_TEST_CONTEXT") {
      env[k] = v;
    }
  }
  Object.assign(env, { PATH: "/nonexistent", ...extra });
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--test",
      "--test-reporter=spec",
      join("test", "identity", "os-keyring.test.ts"),
    ],
    { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("keychain suite without a Secret Service", { skip: process.platform !== "linux" }, () => {
  test("is skipped with a reason that says how to run it, and the run passes", () => {
    const r = runKeychainSuite({});
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /against a real Secret Service .*# no Secret Service to test against/);
    assert.match(r.out, /apt-get install dbus gnome-keyring libsecret-tools/);
    assert.match(r.out, /fail 0/);
  });

  for (const [name, extra] of [
    ["CI=true", { CI: "true" }],
    ["SEED_TEST_REQUIRE_SECRET_SERVICE=1", { SEED_TEST_REQUIRE_SECRET_SERVICE: "1" }],
  ] as const) {
    test(`fails instead with ${name}`, () => {
      const r = runKeychainSuite(extra);
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, /required here .* but tools are missing/);
    });
  }
});
