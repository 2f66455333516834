/**
 * The KEK sources (src/identity/kek.ts) without a daemon: the order a new keystore picks them in,
 * the checks on KEK files, the OS keychain through an in-memory keychain (the real one is tested
 * against a Secret Service elsewhere), and that a missing KEK is never replaced by a new one.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError } from "../../src/config/errors.js";
import {
  type Kek,
  KekResolver,
  type KekResolverOptions,
  type KeyringOpener,
  parseKekDescriptor,
} from "../../src/identity/kek.js";
import { OsKeyringError } from "../../src/identity/os-keyring.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh tree: `data` (the data dir) and `config` (generated KEKs), side by side. */
function tree(): { root: string; dataDir: string; configDir: string } {
  const root = mkdtempSync(join(tmpdir(), "seed-kek-test-"));
  dirs.push(root);
  const dataDir = join(root, "data");
  mkdirSync(dataDir, { mode: 0o700 });
  return { root, dataDir, configDir: join(root, "config", "seed-daemon") };
}

const b64 = () => randomBytes(32).toString("base64");

/** An in-memory keychain; `failSet` makes every write fail as a locked keychain does. */
function memoryKeychain(opts: { failSet?: boolean } = {}) {
  const items = new Map<string, string>();
  let opened = 0;
  const opener: KeyringOpener = () => {
    opened++;
    return {
      keyring: {
        get: (service, account) => items.get(`${service}\u0000${account}`) ?? null,
        set: (service, account, secret) => {
          if (opts.failSet) throw new OsKeyringError("inaccessible");
          items.set(`${service}\u0000${account}`, secret);
        },
      },
    };
  };
  return { items, opener, opened: () => opened };
}

function resolver(
  t: ReturnType<typeof tree>,
  env: NodeJS.ProcessEnv,
  extra: Partial<KekResolverOptions> = {},
): KekResolver {
  return new KekResolver({
    env: { SEED_DAEMON_KEYCHAIN: "off", ...env },
    dataDir: t.dataDir,
    configDir: t.configDir,
    ...extra,
  });
}

/** Asserts a ConfigError whose one-line message matches and holds none of `secrets`. */
function configError(pattern: RegExp, secrets: string[] = []) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"), "one line");
    for (const s of secrets) assert.ok(!err.message.includes(s), "a secret in the message");
    return true;
  };
}

/** Two KEKs are the same key when one opens what the other wrapped. */
function same(a: Kek, b: Kek): boolean {
  const dataKey = randomBytes(32);
  const opened = b.unwrap(a.wrap(dataKey));
  return opened !== undefined && Buffer.from(opened).equals(dataKey);
}

function kekFile(dir: string, text: string, mode = 0o600): string {
  const path = join(dir, `kek-${randomBytes(4).toString("hex")}`);
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  return path;
}

describe("SEED_DAEMON_KEK and SEED_DAEMON_KEK_FILE", () => {
  it("take a 32-byte key in base64 (standard or URL-safe, padded or not)", async () => {
    const t = tree();
    const key = randomBytes(32);
    const forms = [
      key.toString("base64"),
      key.toString("base64").replace(/=$/, ""),
      key.toString("base64url"),
      ` ${key.toString("base64")}\n`,
    ];
    const keks = await Promise.all(
      forms.map(async (v) => (await resolver(t, { SEED_DAEMON_KEK: v }).forNew()).kek),
    );
    for (const k of keks) {
      assert.equal(k.source, "env");
      assert.ok(same(k, keks[0] as Kek));
    }
    const file = kekFile(t.root, `${key.toString("base64")}\n`);
    const fromFile = (await resolver(t, { SEED_DAEMON_KEK_FILE: file }).forNew()).kek;
    assert.deepEqual(fromFile.descriptor, { source: "file", path: file });
    assert.ok(same(fromFile, keks[0] as Kek));
    assert.equal(JSON.stringify({ fromFile }).includes(key.toString("base64")), false);
    assert.equal(existsSync(t.configDir), false, "nothing generated");
  });

  it("refuse a wrong length or bad base64, never echoing the value", async () => {
    const t = tree();
    for (const v of [
      randomBytes(31).toString("base64"),
      randomBytes(33).toString("base64"),
      "!".repeat(44),
      // Too short; the "?" keeps it from turning up by chance in a temp path of the message.
      "x?",
    ]) {
      await assert.rejects(
        resolver(t, { SEED_DAEMON_KEK: v }).forNew(),
        configError(
          /^SEED_DAEMON_KEK does not hold 32 bytes in base64; make one with: openssl rand -base64 32$/,
          [v],
        ),
      );
      const file = kekFile(t.root, v);
      await assert.rejects(
        resolver(t, { SEED_DAEMON_KEK_FILE: file }).forNew(),
        configError(/does not hold 32 bytes in base64/, [v]),
      );
    }
    assert.throws(
      () => resolver(t, { SEED_DAEMON_KEK: b64(), SEED_DAEMON_KEK_FILE: "/x" }),
      configError(
        /^set only one of SEED_DAEMON_KEK_FILE and SEED_DAEMON_KEK \(an empty value unsets one\)$/,
      ),
    );
  });

  it("refuse a KEK file that is missing, unsafe, a symlink, not a file, or in the data dir", async () => {
    const t = tree();
    const good = b64();
    const missing = join(t.root, "nope");
    await assert.rejects(
      resolver(t, { SEED_DAEMON_KEK_FILE: missing }).forNew(),
      configError(
        /^SEED_DAEMON_KEK_FILE .*nope does not exist; it is configured, so no new KEK is generated/,
      ),
    );
    for (const mode of [0o644, 0o640, 0o604, 0o700, 0o660]) {
      const file = kekFile(t.root, good, mode);
      await assert.rejects(
        resolver(t, { SEED_DAEMON_KEK_FILE: file }).forNew(),
        configError(new RegExp(`has mode 0${mode.toString(8)}; it must be 0600 or 0400`), [good]),
      );
    }
    assert.equal(
      (await resolver(t, { SEED_DAEMON_KEK_FILE: kekFile(t.root, good, 0o400) }).forNew()).kek
        .source,
      "file",
    );
    const link = join(t.root, "link");
    symlinkSync(kekFile(t.root, good), link);
    await assert.rejects(
      resolver(t, { SEED_DAEMON_KEK_FILE: link }).forNew(),
      configError(/is a symlink; refusing to follow it/),
    );
    await assert.rejects(
      resolver(t, { SEED_DAEMON_KEK_FILE: t.dataDir }).forNew(),
      configError(/inside the data dir/),
    );
    await assert.rejects(
      resolver(t, { SEED_DAEMON_KEK_FILE: kekFile(t.dataDir, good) }).forNew(),
      configError(/is inside the data dir .*: a copy of the data dir would hold the key/),
    );
    const dir = join(t.root, "a-dir");
    mkdirSync(dir, { mode: 0o600 });
    await assert.rejects(
      resolver(t, { SEED_DAEMON_KEK_FILE: dir }).forNew(),
      configError(/is not a regular file/),
    );
    assert.equal(existsSync(t.configDir), false, "a configured source is never replaced");
  });

  it("refuse a KEK file owned by another user", {
    skip: process.getuid?.() === 0 ? false : "needs root to chown a file to another user",
  }, async () => {
    const t = tree();
    const file = kekFile(t.root, b64());
    chownSync(file, 54321, 54321);
    await assert.rejects(
      resolver(t, { SEED_DAEMON_KEK_FILE: file }).forNew(),
      configError(/is owned by another user \(uid 54321\)/),
    );
  });

  it("win over the recorded source of an existing keystore, and over the keychain", async () => {
    const t = tree();
    const kc = memoryKeychain();
    const r = resolver(
      t,
      { SEED_DAEMON_KEK: b64(), SEED_DAEMON_KEYCHAIN: "on" },
      { openKeyring: kc.opener },
    );
    assert.equal(
      (await r.forExisting({ source: "keychain", account: "kek-0123456789abcdef" })).source,
      "env",
    );
    assert.equal((await r.forNew()).kek.source, "env");
    assert.equal(kc.opened(), 0, "the keychain is not even opened");
  });
});

describe("the OS keychain", () => {
  it("holds a new keystore's KEK under a new account and gives it back", async () => {
    const t = tree();
    const kc = memoryKeychain();
    const r = resolver(
      t,
      { SEED_DAEMON_KEYCHAIN: "on", SEED_DAEMON_KEYSTORE_PASSPHRASE: "pw" },
      { openKeyring: kc.opener },
    );
    const made = await r.forNew();
    assert.equal(made.kek.source, "keychain");
    const { account } = made.kek.descriptor as { account: string };
    assert.match(account, /^kek-[0-9a-f]{16}$/);
    const stored = kc.items.get(`seed-daemon\u0000${account}`) ?? "";
    assert.equal(Buffer.from(stored, "base64").length, 32);
    // The passphrase is set but the keychain comes first: one notice says so.
    assert.deepEqual(r.notices, [
      `SEED_DAEMON_KEYSTORE_PASSPHRASE is set but not used: the keystore's KEK comes from the OS keychain (service seed-daemon, account ${account})`,
    ]);
    const again = await resolver(
      t,
      {},
      { openKeyring: kc.opener, env: { SEED_DAEMON_KEYCHAIN: "on" } },
    ).forExisting(made.kek.descriptor);
    assert.ok(same(made.kek, again));
    made.discard();
    assert.equal(kc.items.get(`seed-daemon\u0000${account}`), "", "discard empties the item");
  });

  it("an existing keystore's missing item is an error, never a new KEK", async () => {
    const t = tree();
    const kc = memoryKeychain();
    const r = resolver(t, { SEED_DAEMON_KEYCHAIN: "on" }, { openKeyring: kc.opener });
    const recorded = { source: "keychain", account: "kek-00112233445566778" } as const;
    await assert.rejects(
      r.forExisting(recorded),
      configError(
        /wrapped by a KEK from the OS keychain \(service seed-daemon, account kek-00112233445566778\), which holds no such item; restore it/,
      ),
    );
    assert.equal(kc.items.size, 0);
    assert.equal(existsSync(t.configDir), false);
    kc.items.set(`seed-daemon\u0000${recorded.account}`, "short");
    await assert.rejects(
      r.forExisting(recorded),
      configError(/does not hold 32 bytes in base64/, ["short"]),
    );
    const off = resolver(t, {}, { openKeyring: kc.opener });
    await assert.rejects(
      off.forExisting(recorded),
      configError(/the OS keychain is unavailable: it is turned off \(SEED_DAEMON_KEYCHAIN=off\)/),
    );
    const down = resolver(
      t,
      { SEED_DAEMON_KEYCHAIN: "on" },
      { openKeyring: () => ({ keyring: null, reason: "no D-Bus" }) },
    );
    await assert.rejects(down.forExisting(recorded), configError(/unavailable: no D-Bus$/));
  });

  it("unreachable, locked or off: a new keystore goes on to the passphrase, then a generated file", async () => {
    const t = tree();
    const locked = memoryKeychain({ failSet: true });
    const r = resolver(t, { SEED_DAEMON_KEYCHAIN: "on" }, { openKeyring: locked.opener });
    const made = await r.forNew();
    assert.equal(made.kek.source, "generated-file");
    assert.equal(r.notices.length, 1);
    assert.match(
      r.notices[0] ?? "",
      /no OS keychain: storing a KEK in it failed: the OS keychain refused access/,
    );
    const off = memoryKeychain();
    const r2 = resolver(t, {}, { openKeyring: off.opener });
    assert.equal((await r2.forNew()).kek.source, "generated-file");
    assert.equal(off.opened(), 0, "SEED_DAEMON_KEYCHAIN=off: never opened");
    assert.match(
      r2.notices[0] ?? "",
      /no OS keychain: it is turned off \(SEED_DAEMON_KEYCHAIN=off\)/,
    );
    assert.throws(
      () => resolver(t, { SEED_DAEMON_KEYCHAIN: "maybe" }),
      configError(/^SEED_DAEMON_KEYCHAIN: expected on or off$/),
    );
  });
});

describe("the generated KEK file", () => {
  it("is created once, 0600 in a 0700 config dir outside the data dir, with one warning line", async () => {
    const t = tree();
    const r = resolver(t, {});
    const made = await r.forNew();
    const { path } = made.kek.descriptor as { path: string };
    assert.equal(join(path, ".."), t.configDir);
    assert.match(path, /kek-[0-9a-f]{16}$/);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(t.configDir).mode & 0o777, 0o700);
    assert.match(readFileSync(path, "latin1"), /^[A-Za-z0-9+/]{43}=\n$/);
    assert.equal(r.notices.length, 1);
    assert.match(
      r.notices[0] ?? "",
      /generated file .*: .*a better source is SEED_DAEMON_KEK_FILE \(a Docker or Kubernetes secret\), the OS keychain, or SEED_DAEMON_KEYSTORE_PASSPHRASE/,
    );
    const r2 = resolver(t, {});
    assert.ok(same(made.kek, await r2.forExisting(made.kek.descriptor)));
    assert.equal(r2.notices.length, 1, "one warning at every start that uses it");
    assert.equal(readdirSync(t.configDir).length, 1);
  });

  it("missing or unsafe for an existing keystore: an error, and no new one", async () => {
    const t = tree();
    const made = await resolver(t, {}).forNew();
    const { path } = made.kek.descriptor as { path: string };
    chmodSync(path, 0o644);
    await assert.rejects(
      resolver(t, {}).forExisting(made.kek.descriptor),
      configError(/has mode 0644/),
    );
    made.discard();
    assert.equal(existsSync(path), false, "discard removes it");
    await assert.rejects(
      resolver(t, {}).forExisting(made.kek.descriptor),
      configError(/^the generated KEK file .* does not exist; restore it from your backup/),
    );
    assert.deepEqual(readdirSync(t.configDir), [], "no new KEK");
  });

  it("is never put in the data dir, nor in a directory others can write", async () => {
    const t = tree();
    await assert.rejects(
      resolver(t, {}, { configDir: join(t.dataDir, "kek") }).forNew(),
      configError(/the KEK directory .* is inside the data dir/),
    );
    await assert.rejects(
      resolver(t, {}, { configDir: t.dataDir }).forNew(),
      configError(/inside the data dir/),
    );
    mkdirSync(t.configDir, { recursive: true, mode: 0o700 });
    chmodSync(t.configDir, 0o777);
    await assert.rejects(
      resolver(t, {}).forNew(),
      configError(/KEK directory .* is writable by group or other users/),
    );
  });
});

describe("rekey targets and retiring the old KEK", () => {
  it("makes new secrets under new names and retires only what the daemon made", async () => {
    const t = tree();
    const kc = memoryKeychain();
    const r = resolver(t, { SEED_DAEMON_KEYCHAIN: "on" }, { openKeyring: kc.opener });
    const first = await r.forNew();
    const second = await r.replacement({ to: "keychain" });
    const a1 = (first.kek.descriptor as { account: string }).account;
    const a2 = (second.kek.descriptor as { account: string }).account;
    assert.notEqual(a1, a2);
    assert.ok(!same(first.kek, second.kek));
    assert.match(r.retire(first.kek.descriptor), /emptied the old OS keychain item/);
    assert.equal(kc.items.get(`seed-daemon\u0000${a1}`), "");
    assert.equal(Buffer.from(kc.items.get(`seed-daemon\u0000${a2}`) ?? "", "base64").length, 32);

    const gen = await r.replacement({ to: "generated-file" });
    const { path } = gen.kek.descriptor as { path: string };
    assert.ok(existsSync(path));
    assert.match(r.retire(gen.kek.descriptor), /removed the old KEK file/);
    assert.equal(existsSync(path), false);

    const user = kekFile(t.root, b64(), 0o400);
    const fromFile = await r.replacement({ to: "file", path: user });
    assert.deepEqual(fromFile.kek.descriptor, { source: "file", path: user });
    assert.match(r.retire(fromFile.kek.descriptor), /no longer opens the keystore; destroy it/);
    assert.ok(existsSync(user), "the user's file is left alone");
    await assert.rejects(
      r.replacement({ to: "file", path: join(t.root, "none") }),
      configError(/--new-kek-file .* does not exist/),
    );
    await assert.rejects(
      resolver(t, {}).replacement({ to: "keychain" }),
      configError(/^cannot use the OS keychain: it is turned off/),
    );
  });
});

describe("recorded descriptors", () => {
  it("parse only well-formed, secret-free shapes", () => {
    for (const good of [
      { source: "file", path: "/run/secrets/k" },
      { source: "env" },
      { source: "keychain", account: "kek-0123456789abcdef" },
      { source: "generated-file", path: "/home/u/.config/seed-daemon/kek-0123456789abcdef" },
      {
        source: "passphrase",
        salt: randomBytes(16).toString("base64"),
        kdf: { t: 3, m: 65536, p: 4 },
      },
    ]) {
      assert.deepEqual(parseKekDescriptor(JSON.stringify(good)), good);
    }
    for (const bad of [
      "",
      "null",
      "{}",
      JSON.stringify({ source: "file", path: "relative" }),
      JSON.stringify({ source: "keychain", account: "other" }),
      JSON.stringify({ source: "passphrase", salt: "AA==", kdf: { t: 3, m: 65536, p: 4 } }),
      JSON.stringify({
        source: "passphrase",
        salt: randomBytes(16).toString("base64"),
        kdf: { t: 99, m: 65536, p: 4 },
      }),
      JSON.stringify({ source: "plaintext" }),
    ]) {
      assert.equal(parseKekDescriptor(bad), undefined, bad);
    }
  });
});
