import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { openOsKeyring } from "../../src/identity/os-keyring.js";
import {
  type SecretService,
  secretServiceSkip,
  startSecretService,
} from "../helpers/secret-service.js";

const CHILD = join(import.meta.dirname, "fixtures", "os-keyring-child.ts");

type Op =
  | { op: "get"; service: string; account: string }
  | { op: "set"; service: string; account: string; secret: string };

interface ChildResult {
  reason: string | null;
  loaded: boolean;
  results: ({ value: string | null } | { ok: true } | { error: string; name: string })[];
}

/** openOsKeyring in a child whose whole environment is `env` (plus PATH). */
function inChild(env: Record<string, string>, ops: Op[] = []): Promise<ChildResult> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(ops)], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      rej(new Error(`child timed out:\n${out}\n${err}`));
    }, 30_000);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) rej(new Error(`child exited ${code}:\n${out}\n${err}`));
      else res(JSON.parse(out) as ChildResult);
    });
  });
}

function libraryLoaded(): boolean {
  return Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes("@napi-rs"));
}

const linuxOnly = process.platform === "linux" ? false : "the Secret Service is Linux's keychain";

describe("openOsKeyring without a keychain", () => {
  test("SEED_DAEMON_KEYCHAIN=off: null with that reason, and the library is never loaded", () => {
    const opened = openOsKeyring({ SEED_DAEMON_KEYCHAIN: "off", DBUS_SESSION_BUS_ADDRESS: "x" });
    assert.deepEqual(opened, { keyring: null, reason: "disabled by SEED_DAEMON_KEYCHAIN=off" });
    assert.equal(libraryLoaded(), false);
  });

  test("Linux without DBUS_SESSION_BUS_ADDRESS: null with a reason naming it", {
    skip: linuxOnly,
  }, () => {
    for (const env of [{}, { DBUS_SESSION_BUS_ADDRESS: "" }]) {
      const opened = openOsKeyring(env);
      assert.equal(opened.keyring, null);
      assert.match(
        (opened as { reason: string }).reason,
        /^no Secret Service: DBUS_SESSION_BUS_ADDRESS is not set/,
      );
    }
    assert.equal(libraryLoaded(), false);
  });

  test("a bus address that leads nowhere: null with a fixed reason, no library text", {
    skip: linuxOnly,
  }, async () => {
    const r = await inChild({ DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/seed-test-bus" });
    assert.equal(r.loaded, true);
    assert.equal(
      r.reason,
      "OS keychain unavailable: no Secret Service answers on the D-Bus session bus " +
        "(install and start gnome-keyring, KWallet or KeePassXC)",
    );
  });
});

describe("openOsKeyring against a real Secret Service", { skip: secretServiceSkip() }, () => {
  let ss: SecretService;
  before(async () => {
    ss = await startSecretService();
  });
  after(async () => {
    await ss?.stop();
  });

  test("a session bus with no Secret Service on it: null with a fixed reason", async () => {
    const bare = await startSecretService({ busOnly: true });
    try {
      const r = await inChild(bare.env);
      assert.match(r.reason ?? "", /^OS keychain unavailable: no Secret Service answers/);
      assert.doesNotMatch(r.reason ?? "", /DBus|org\.freedesktop|\.service files/);
    } finally {
      await bare.stop();
    }
  });

  test("set then get round-trips; an absent item is null; secret-tool sees the same item", async () => {
    const secret = `round-trip ✓ ${Math.random().toString(36).slice(2)}`;
    const r = await inChild(ss.env, [
      { op: "get", service: "seed-daemon-test", account: "round-trip" },
      { op: "set", service: "seed-daemon-test", account: "round-trip", secret },
      { op: "get", service: "seed-daemon-test", account: "round-trip" },
      { op: "set", service: "seed-daemon-test", account: "round-trip", secret: `${secret}2` },
      { op: "get", service: "seed-daemon-test", account: "round-trip" },
      { op: "get", service: "seed-daemon-test", account: "other" },
    ]);
    assert.equal(r.reason, null);
    assert.deepEqual(r.results, [
      { value: null },
      { ok: true },
      { value: secret },
      { ok: true },
      { value: `${secret}2` },
      { value: null },
    ]);
    // The item is a plain Secret Service item with attributes service and username.
    assert.equal(
      await ss.lookup({ service: "seed-daemon-test", username: "round-trip" }),
      `${secret}2`,
    );
  });

  test("reads an item that secret-tool wrote (as Seed's tools do)", async () => {
    await ss.store(
      "Password for 'acct' on 'seed-daemon-interop'",
      { service: "seed-daemon-interop", username: "acct" },
      '{"main":"written by secret-tool"}',
    );
    const r = await inChild(ss.env, [
      { op: "get", service: "seed-daemon-interop", account: "acct" },
    ]);
    assert.deepEqual(r.results, [{ value: '{"main":"written by secret-tool"}' }]);
  });

  test("a locked keyring: get and set fail with a fixed text, never the library's", async () => {
    const locked = await startSecretService();
    try {
      await locked.store("L", { service: "seed-daemon-locked", username: "acct" }, "hidden-1234");
      await locked.lock();
      const r = await inChild(locked.env, [
        { op: "get", service: "seed-daemon-locked", account: "acct" },
        { op: "set", service: "seed-daemon-locked", account: "new", secret: "hidden-5678" },
      ]);
      // The probe asks for an item nobody writes, so it needs no unlock: the keychain is open.
      assert.equal(r.reason, null);
      const refused = {
        name: "OsKeyringError",
        error:
          "the OS keychain refused access (locked, no default keyring, or access denied by the user)",
      };
      assert.deepEqual(r.results, [refused, refused]);
      assert.doesNotMatch(JSON.stringify(r), /hidden|prompt|Secret Service:/);
    } finally {
      await locked.stop();
    }
  });
});
