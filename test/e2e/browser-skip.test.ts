import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ROOT } from "../helpers/daemon.js";

/** Runs the real-browser suite on a machine where no browser can be found. */
function runBrowserSuite(extra: Record<string, string>) {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // NODE_TEST_CONTEXT would make the child report into this run instead of printing.
    if (k !== "CI" && k !== "SEED_TEST_REQUIRE_BROWSER" && k !== "NODE_TEST_CONTEXT") env[k] = v;
  }
  Object.assign(env, { PATH: "/nonexistent", CHROMIUM_PATH: "/nonexistent/chromium", ...extra });
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", "--test-reporter=spec", join("test", "e2e", "browser.test.ts")],
    { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("real-browser suite without a browser", () => {
  test("is skipped with a reason that says how to run it, and the run passes", () => {
    const r = runBrowserSuite({});
    assert.equal(r.code, 0, r.out);
    // The suite is reported as skipped (`﹣ name # reason`), with no test run or failed.
    assert.match(r.out, /a real browser page .*# no Chromium or Chrome found/);
    assert.match(r.out, /apt-get install chromium/);
    assert.match(r.out, /CHROMIUM_PATH=/);
    assert.match(r.out, /pass 0/);
    assert.match(r.out, /fail 0/);
  });

  for (const [name, extra] of [
    ["CI=true", { CI: "true" }],
    ["SEED_TEST_REQUIRE_BROWSER=1", { SEED_TEST_REQUIRE_BROWSER: "1" }],
  ] as const) {
    test(`fails instead with ${name}`, () => {
      const r = runBrowserSuite(extra);
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, /no browser was found/);
    });
  }
});
