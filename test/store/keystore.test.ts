import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import nacl from "tweetnacl";
import { IdentityError, type IdentityErrorCode } from "../../src/identity/errors.js";
import { decodeHmkey } from "../../src/identity/hmkey.js";
import { KekResolver } from "../../src/identity/kek.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import {
  DatabaseVersionError,
  type Db,
  type Migration,
  migrate,
  openDatabase,
  SCHEMA_VERSION,
} from "../../src/store/db.js";
import { Keystore } from "../../src/store/keystore.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "seed-store-test-"));
  dirs.push(d);
  return d;
}

/** The KEK of this file's keystores: SEED_DAEMON_KEK, so no test derives or writes a KEK. */
const KEK_ENV = {
  SEED_DAEMON_KEK: randomBytes(32).toString("base64"),
  SEED_DAEMON_KEYCHAIN: "off",
};

/** Opens the keystore of `db` with the KEK sources of `env` (default: {@link KEK_ENV}). */
function openKeystore(db: Db, env: NodeJS.ProcessEnv = KEK_ENV, legacyPassphrase?: string) {
  return Keystore.open(db, {
    kek: new KekResolver({
      env,
      dataDir: dirname(db.name),
      configDir: join(dirname(db.name), "..", "kek"),
    }),
    legacyPassphrase,
  });
}

function newSeed(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

function errorCode(code: IdentityErrorCode, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof IdentityError, String(err));
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  };
}

/** Everything SQLite has on disk for this database: main file plus WAL, if any. */
function rawBytes(dir: string): Buffer {
  const parts = ["seed.db", "seed.db-wal"]
    .map((f) => join(dir, f))
    .filter((p) => existsSync(p))
    .map((p) => readFileSync(p));
  return Buffer.concat(parts);
}

/** A key's seed, read back the only way the keystore gives it out: an unencrypted export. */
async function seedOf(ks: Keystore, name: string): Promise<Uint8Array> {
  const { contents } = await ks.exportHmkey(name);
  return (await decodeHmkey(contents)).seed;
}

function contains(haystack: Buffer, seed: Uint8Array): boolean {
  return haystack.includes(Buffer.from(seed));
}

describe("openDatabase", () => {
  it("creates seed.db 0600 with WAL, synchronous=FULL, foreign keys and the current schema", () => {
    const dir = tempDir();
    const db = openDatabase(dir);
    try {
      assert.equal(statSync(join(dir, "seed.db")).mode & 0o777, 0o600);
      db.prepare("INSERT INTO blobs (cid, codec, data, create_time) VALUES (?, ?, ?, ?)").run(
        "bafy-test",
        0x71,
        Buffer.from([1, 2, 3]),
        Date.now(),
      );
      for (const f of ["seed.db-wal", "seed.db-shm"]) {
        assert.ok(existsSync(join(dir, f)), `${f} exists`);
        assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
      }
      assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(db.pragma("synchronous", { simple: true }), 2); // FULL
      assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
      assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
      const tables = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .pluck()
        .all();
      assert.deepEqual(tables, [
        "blob_cids",
        "blobs",
        "capabilities",
        "changes",
        "documents",
        "keys",
        "meta",
        "refs",
      ]);
    } finally {
      db.close();
    }
  });

  it("tightens an existing world-readable seed.db to 0600", () => {
    const dir = tempDir();
    openDatabase(dir).close();
    chmodSync(join(dir, "seed.db"), 0o644);
    openDatabase(dir).close();
    assert.equal(statSync(join(dir, "seed.db")).mode & 0o777, 0o600);
  });

  it("refuses a symlink in place of seed.db", () => {
    const dir = tempDir();
    const elsewhere = join(tempDir(), "elsewhere.db");
    writeFileSync(elsewhere, "");
    symlinkSync(elsewhere, join(dir, "seed.db"));
    assert.throws(() => openDatabase(dir), /not a regular file/);
    assert.equal(readFileSync(elsewhere).length, 0);
  });

  it("refuses a database written by a newer version, and leaves it alone", () => {
    const dir = tempDir();
    openDatabase(dir).close();
    const raw = new Database(join(dir, "seed.db"));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(
      () => openDatabase(dir),
      (err: unknown) =>
        err instanceof DatabaseVersionError &&
        err.found === SCHEMA_VERSION + 1 &&
        /newer seed-daemon/.test(err.message),
    );
    const check = new Database(join(dir, "seed.db"), { readonly: true });
    assert.equal(check.pragma("user_version", { simple: true }), SCHEMA_VERSION + 1);
    check.close();
  });

  it("applies each migration atomically with its version bump", () => {
    const db: Db = new Database(":memory:");
    const migrations: Migration[] = [
      (d) => d.exec("CREATE TABLE a (x)"),
      (d) => {
        d.exec("CREATE TABLE b (x)");
        throw new Error("boom");
      },
    ];
    assert.throws(() => migrate(db, migrations), /boom/);
    assert.equal(db.pragma("user_version", { simple: true }), 1);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
    assert.deepEqual(tables, ["a"]);
    db.close();
  });
});

describe("Keystore", () => {
  it("registers, lists, gets, renames and deletes keys", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    assert.equal(ks.kekSource, "env");
    const seedA = newSeed();
    const seedB = newSeed();
    const before = Date.now();
    const a = ks.register("main", seedA);
    const expected = principalToString(publicKeyFromSeed(seedA));
    assert.equal(a.name, "main");
    assert.equal(a.publicKey, expected);
    assert.equal(a.accountId, expected);
    assert.ok(a.createTime.getTime() >= before && a.createTime.getTime() <= Date.now());
    ks.register("bot 2", seedB);

    assert.deepEqual(
      ks.list().map((k) => k.name),
      ["bot 2", "main"],
    );
    assert.deepEqual(ks.get("main"), a);
    assert.deepEqual(await seedOf(ks, "main"), seedA);
    assert.deepEqual(await seedOf(ks, "bot 2"), seedB);
    assert.throws(() => ks.get("nope"), errorCode("not_found"));
    await assert.rejects(seedOf(ks, "nope"), errorCode("not_found"));

    const renamed = ks.rename("main", "primary");
    assert.equal(renamed.name, "primary");
    assert.equal(renamed.publicKey, expected);
    assert.deepEqual(await seedOf(ks, "primary"), seedA);
    assert.throws(() => ks.get("main"), errorCode("not_found"));
    assert.throws(() => ks.rename("primary", "bot 2"), errorCode("already_exists", /bot 2/));
    assert.throws(() => ks.rename("ghost", "x"), errorCode("not_found"));
    assert.equal(ks.rename("primary", "primary").name, "primary");

    assert.equal(ks.delete("primary").publicKey, expected);
    await assert.rejects(seedOf(ks, "primary"), errorCode("not_found"));
    assert.throws(() => ks.delete("primary"), errorCode("not_found"));
    assert.equal(ks.list().length, 1);

    ks.register("c", newSeed());
    assert.equal(ks.deleteAll(), 2);
    assert.deepEqual(ks.list(), []);
    assert.equal(ks.deleteAll(), 0);
    db.close();
  });

  it("refuses a duplicate name or a duplicate key, saying which", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    const seed = newSeed();
    ks.register("main", seed);
    assert.throws(
      () => ks.register("main", newSeed()),
      errorCode("already_exists", /named "main"/),
    );
    assert.throws(
      () => ks.register("other", seed),
      errorCode("already_exists", /public key .* already registered as "main"/),
    );
    assert.equal(ks.list().length, 1);
    db.close();
  });

  it("enforces key name rules", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    for (const name of [
      "",
      " main",
      "main ",
      "line\nbreak",
      "tab\there",
      "nul\u0000",
      "bidi\u202eevil",
      "zero\u200bwidth",
      "sep\u2028",
      "x".repeat(129),
    ]) {
      assert.throws(() => ks.register(name, newSeed()), errorCode("invalid_argument"), name);
    }
    // 128 code points is fine even when that is 256 UTF-16 units.
    ks.register("\u{1F511}".repeat(128), newSeed());
    ks.register("Ünïcødé name — ok", newSeed());
    ks.register("x".repeat(128), newSeed());
    assert.throws(() => ks.rename("x".repeat(128), "\u0007"), errorCode("invalid_argument"));
    assert.throws(() => ks.register("bad-seed", new Uint8Array(31)), errorCode("invalid_argument"));
    db.close();
  });

  it("keeps keys across close and reopen, and they still sign", async () => {
    const dir = tempDir();
    const seed = newSeed();
    let db = openDatabase(dir);
    (await openKeystore(db)).register("main", seed);
    db.close();

    db = openDatabase(dir);
    const ks = await openKeystore(db);
    assert.deepEqual(
      ks.list().map((k) => k.name),
      ["main"],
    );
    const data = new TextEncoder().encode("payload");
    const sig = ks.sign("main", data);
    assert.ok(nacl.sign.detached.verify(data, sig, publicKeyFromSeed(seed)));
    assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    db.close();
  });

  it("overwrites a deleted key's sealed seed in the database file", async () => {
    const dir = tempDir();
    let db = openDatabase(dir);
    let ks = await openKeystore(db);
    ks.register("gone", newSeed());
    ks.register("kept", newSeed());
    const sealedOf = (name: string) =>
      db.prepare("SELECT seed FROM keys WHERE name = ?").pluck().get(name) as Buffer;
    const [gone, kept] = [sealedOf("gone"), sealedOf("kept")];
    db.close();
    db = openDatabase(dir);
    ks = await openKeystore(db);
    ks.delete("gone");
    assert.ok(!contains(rawBytes(dir), gone), "gone from disk while the daemon still runs");
    db.close();
    const file = readFileSync(join(dir, "seed.db"));
    assert.ok(!contains(file, gone), "not in seed.db");
    assert.ok(contains(file, kept), "the probe can see a stored (sealed) seed");
  });

  it("detects a stored seed that no longer matches its public key", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    ks.register("a", newSeed());
    db.prepare("UPDATE keys SET seed = ? WHERE name = 'a'").run(Buffer.from(newSeed()));
    await assert.rejects(seedOf(ks, "a"), errorCode("failed_precondition", /damaged/));
    db.close();
  });
});

describe("Keystore error messages", () => {
  it("quote a caller's key name cut to 128 characters", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    const long = `${"n".repeat(128)}TAIL`.repeat(50);
    const cut = `"${"n".repeat(128)}…"`;
    for (const call of [
      () => ks.get(long),
      () => ks.sign(long, new Uint8Array(1)),
      () => ks.signer(long),
      () => ks.delete(long),
      () => ks.rename(long, "fine"),
    ]) {
      assert.throws(call, (err: unknown) => {
        assert.ok(err instanceof IdentityError);
        assert.equal(err.message, `no key named ${cut}`);
        return true;
      });
    }
    db.close();
  });
});

describe("Keystore signing", () => {
  const data = new TextEncoder().encode("a change to sign");
  const verifies = (sig: Uint8Array, seed: Uint8Array) =>
    nacl.sign.detached.verify(data, sig, nacl.sign.keyPair.fromSeed(seed).publicKey);

  it("signs by name and through a signer that follows the key, not the name", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    const seed = newSeed();
    const info = ks.register("main", seed);
    assert.ok(verifies(ks.sign("main", data), seed));
    const signer = ks.signer("main");
    assert.equal(signer.principal, info.publicKey);
    assert.deepEqual(signer.publicKey, publicKeyFromSeed(seed));
    assert.ok(verifies(signer.sign(data), seed));

    ks.rename("main", "primary");
    assert.throws(() => ks.sign("main", data), errorCode("not_found", /"main"/));
    assert.ok(verifies(ks.sign("primary", data), seed));
    assert.ok(verifies(signer.sign(data), seed), "a rename does not break a signer");

    ks.delete("primary");
    assert.throws(() => ks.sign("primary", data), errorCode("not_found"));
    assert.throws(() => signer.sign(data), errorCode("not_found"));
    assert.throws(() => ks.signer("primary"), errorCode("not_found"));

    // Registering the same key again makes it usable again, old signers included.
    ks.register("again", seed);
    assert.ok(verifies(signer.sign(data), seed));
    ks.register("other", newSeed());
    const other = ks.signer("other");
    assert.equal(ks.deleteAll(), 2);
    assert.throws(() => signer.sign(data), errorCode("not_found"));
    assert.throws(() => other.sign(data), errorCode("not_found"));
    db.close();
  });

  it("checks each key once, at open: a row damaged later is refused from the next open on", async () => {
    const dir = tempDir();
    const [seedA, seedB] = [newSeed(), newSeed()];
    let db = openDatabase(dir);
    let ks = await openKeystore(db);
    ks.register("a", seedA);
    ks.register("b", seedB);
    db.prepare("UPDATE keys SET seed = ? WHERE name = 'a'").run(Buffer.from(newSeed()));
    // Still the key checked at register: nothing re-reads the row per signature.
    assert.ok(verifies(ks.sign("a", data), seedA));
    db.close();

    db = openDatabase(dir);
    ks = await openKeystore(db);
    assert.throws(() => ks.sign("a", data), errorCode("failed_precondition", /"a" is damaged/));
    assert.throws(() => ks.signer("a"), errorCode("failed_precondition", /damaged/));
    await assert.rejects(ks.exportHmkey("a"), errorCode("failed_precondition", /damaged/));
    assert.ok(verifies(ks.sign("b", data), seedB), "one damaged row does not stop the others");
    db.close();
  });

  it("picks up a key another connection added", async () => {
    const dir = tempDir();
    const seed = newSeed();
    const db = openDatabase(dir);
    const ks = await openKeystore(db);
    const db2 = openDatabase(dir);
    (await openKeystore(db2)).register("late", seed);
    db2.close();
    assert.ok(verifies(ks.sign("late", data), seed));
    db.close();
  });

  it("refuses to sign, hand out signers or export once disposed", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    ks.register("main", newSeed());
    const signer = ks.signer("main");
    ks.dispose();
    assert.throws(() => ks.sign("main", data), errorCode("failed_precondition", /disposed/));
    assert.throws(() => signer.sign(data), errorCode("failed_precondition", /disposed/));
    assert.throws(() => ks.signer("main"), errorCode("failed_precondition"));
    await assert.rejects(ks.exportHmkey("main"), errorCode("failed_precondition"));
    assert.equal(ks.list().length, 1, "reading names needs no seed");
    db.close();
  });

  it("registers from a mnemonic and imports a key file without the caller touching a seed", async () => {
    const db = openDatabase(tempDir());
    const ks = await openKeystore(db);
    const words = [...Array<string>(11).fill("abandon"), "about"];
    const info = ks.registerMnemonic("main", words);
    assert.equal(info.publicKey, "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f");
    assert.throws(() => ks.registerMnemonic(" bad", words), errorCode("invalid_argument"));
    assert.throws(() => ks.registerMnemonic("x", ["abandon"]), errorCode("invalid_argument"));
    const { key, contents } = await ks.exportHmkey("main");
    assert.deepEqual(key, info);
    ks.delete("main");
    const imported = await ks.importHmkey(contents);
    assert.equal(imported.name, "main", "the name the export wrote into the file");
    ks.delete(imported.name);
    assert.equal((await ks.importHmkey(contents, undefined, "named")).name, "named");
    await assert.rejects(ks.importHmkey(contents, undefined, "other"), errorCode("already_exists"));
    db.close();
  });
});

/** Every text form a seed could leak in: raw bytes, hex, base64, base64url. */
function forms(seed: Uint8Array): Buffer[] {
  const b = Buffer.from(seed);
  return [
    b,
    ...["hex", "base64", "base64url"].map((e) => Buffer.from(b.toString(e as BufferEncoding))),
  ];
}

/** seed.db, -wal and -shm, each as read now (missing ones skipped). */
function dbFiles(dir: string): Buffer[] {
  return ["seed.db", "seed.db-wal", "seed.db-shm"]
    .map((f) => join(dir, f))
    .filter((p) => existsSync(p))
    .map((p) => readFileSync(p));
}

function assertNoSeedOnDisk(dir: string, seeds: readonly Uint8Array[], when: string): void {
  for (const file of dbFiles(dir)) {
    for (const [i, seed] of seeds.entries()) {
      for (const form of forms(seed)) assert.ok(!file.includes(form), `seed ${i} on disk ${when}`);
    }
  }
}

function meta(db: Db, key: string): unknown {
  return db.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(key);
}

const FIXTURES = join(import.meta.dirname, "fixtures");
const ABANDON = [...Array<string>(11).fill("abandon"), "about"];
const LEGAL = "legal winner thank year wave sausage worth useful legal winner thank yellow".split(
  " ",
);
const LEGACY_PASSPHRASE = "legacy fixture passphrase";
const FIXTURE_SEEDS = [keyFromMnemonic(ABANDON), keyFromMnemonic(LEGAL)];

/** A data dir holding a copy of a fixture written by the Keystore before envelope encryption. */
function legacyDir(name: "plaintext" | "passphrase"): string {
  const dir = tempDir();
  copyFileSync(join(FIXTURES, `legacy-${name}.db`), join(dir, "seed.db"));
  return dir;
}

const sign = (ks: Keystore, name: string, seed: Uint8Array) => {
  const data = randomBytes(16);
  return nacl.sign.detached.verify(data, ks.sign(name, data), publicKeyFromSeed(seed));
};

describe("Keystore envelope encryption", () => {
  it("seals every seed under the data key, binds it to its row, and refuses the wrong KEK without writing", async () => {
    const dir = tempDir();
    const seedA = newSeed();
    const seedB = newSeed();
    let db = openDatabase(dir);
    let ks = await openKeystore(db);
    ks.register("a", seedA);
    ks.register("b", seedB);
    const stored = db.prepare("SELECT seed, encrypted FROM keys ORDER BY name").all() as {
      seed: Buffer;
      encrypted: number;
    }[];
    for (const row of stored) {
      assert.equal(row.encrypted, 1);
      assert.equal(row.seed.length, 24 + 32 + 16);
    }
    assert.equal((meta(db, "keystore.data_key") as Buffer).length, 24 + 32 + 16);
    assert.deepEqual(JSON.parse(meta(db, "keystore.kek") as string), { source: "env" });
    assertNoSeedOnDisk(dir, [seedA, seedB], "while open");
    assert.deepEqual(await seedOf(ks, "a"), seedA);

    // A sealed seed moved to another row must not open as that row's key.
    const [rowA, rowB] = stored;
    db.prepare("UPDATE keys SET seed = ? WHERE name = 'a'").run(rowB?.seed);
    db.prepare("UPDATE keys SET seed = ? WHERE name = 'b'").run(rowA?.seed);
    await assert.rejects(seedOf(ks, "a"), errorCode("failed_precondition"));
    db.prepare("UPDATE keys SET seed = ? WHERE name = 'a'").run(rowA?.seed);
    db.prepare("UPDATE keys SET seed = ? WHERE name = 'b'").run(rowB?.seed);
    ks.dispose();
    db.close();
    assertNoSeedOnDisk(dir, [seedA, seedB], "after close");

    assert.ok(!existsSync(join(dir, "seed.db-wal")), "clean close leaves no WAL");
    const bytesBefore = readFileSync(join(dir, "seed.db"));
    const mtimeBefore = statSync(join(dir, "seed.db")).mtimeMs;
    const configDir = join(dir, "..", "kek");
    db = openDatabase(dir);
    const wrong = {
      SEED_DAEMON_KEK: randomBytes(32).toString("base64"),
      SEED_DAEMON_KEYCHAIN: "off",
    };
    await assert.rejects(
      openKeystore(db, wrong),
      errorCode(
        "failed_precondition",
        /^wrong KEK: the KEK from SEED_DAEMON_KEK does not open the keystore's data key \(wrapped by a KEK from SEED_DAEMON_KEK\); nothing was changed$/,
      ),
    );
    // No source at all: the recorded one is named, and no KEK is generated in its place.
    await assert.rejects(openKeystore(db, { SEED_DAEMON_KEYCHAIN: "off" }), (err: unknown) => {
      assert.match(
        String((err as Error).message),
        /wrapped by a KEK from SEED_DAEMON_KEK: set SEED_DAEMON_KEK_FILE or SEED_DAEMON_KEK$/,
      );
      return true;
    });
    db.close();
    assert.equal(existsSync(configDir), false, "no KEK generated");
    assert.deepEqual(readFileSync(join(dir, "seed.db")), bytesBefore);
    assert.equal(statSync(join(dir, "seed.db")).mtimeMs, mtimeBefore);

    db = openDatabase(dir);
    ks = await openKeystore(db);
    assert.deepEqual(await seedOf(ks, "a"), seedA);
    assert.ok(sign(ks, "b", seedB));
    ks.rename("a", "renamed");
    assert.deepEqual(await seedOf(ks, "renamed"), seedA);
    assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    // Once disposed, the instance neither decrypts nor writes.
    ks.dispose();
    await assert.rejects(seedOf(ks, "b"), errorCode("failed_precondition"));
    const late = newSeed();
    assert.throws(() => ks.register("late", late), errorCode("failed_precondition"));
    assert.equal(db.prepare("SELECT count(*) FROM keys WHERE encrypted = 0").pluck().get(), 0);
    db.close();
    assertNoSeedOnDisk(dir, [seedA, seedB, late], "at the end");
  });

  it("migrates a plaintext keystore in one transaction; no seed stays in seed.db, -wal or -shm", async () => {
    // The fixture as the old code left it, plus a plaintext row still in the WAL, as a crash
    // of the old daemon would leave it: copied while the writing connection is open.
    const src = legacyDir("plaintext");
    const third = newSeed();
    const raw = new Database(join(src, "seed.db"));
    raw.pragma("journal_mode = WAL");
    raw.pragma("wal_autocheckpoint = 0");
    raw
      .prepare(
        "INSERT INTO keys (name, public_key, seed, encrypted, create_time) VALUES (?, ?, ?, 0, ?)",
      )
      .run("third", principalToString(publicKeyFromSeed(third)), Buffer.from(third), Date.now());
    const dir = tempDir();
    for (const f of ["seed.db", "seed.db-wal", "seed.db-shm"]) {
      copyFileSync(join(src, f), join(dir, f));
    }
    raw.close();
    const seeds = [...FIXTURE_SEEDS, third];
    const before = Buffer.concat(dbFiles(dir));
    for (const seed of seeds)
      assert.ok(before.includes(Buffer.from(seed)), "control: plaintext before");

    const db = openDatabase(dir);
    const ks = await openKeystore(db);
    assert.deepEqual(ks.migration, { from: "plaintext", keys: 3 });
    assert.deepEqual(db.prepare("SELECT encrypted FROM keys").pluck().all(), [1, 1, 1]);
    assertNoSeedOnDisk(dir, seeds, "after the migration, while open");
    assert.ok(sign(ks, "main", FIXTURE_SEEDS[0] as Uint8Array));
    assert.ok(sign(ks, "legal", FIXTURE_SEEDS[1] as Uint8Array));
    assert.ok(sign(ks, "third", third));
    assert.equal(ks.get("main").publicKey, "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f");
    assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    ks.dispose();
    db.close();
    assertNoSeedOnDisk(dir, seeds, "after close");

    // Migrated once: the next open migrates nothing.
    const again = openDatabase(dir);
    assert.equal((await openKeystore(again)).migration, undefined);
    again.close();
  });

  it("migrates a passphrase keystore: it needs its passphrase and refuses a wrong one without writing", async () => {
    const dir = legacyDir("passphrase");
    const configDir = join(dir, "..", "kek");
    const noKek = { SEED_DAEMON_KEYCHAIN: "off" };
    const bytes = readFileSync(join(dir, "seed.db"));
    let db = openDatabase(dir);
    const oldSealed = db.prepare("SELECT seed FROM keys ORDER BY name").pluck().all() as Buffer[];
    assert.ok(meta(db, "keystore.kdf_salt") instanceof Uint8Array, "the old format");
    await assert.rejects(
      openKeystore(db, noKek),
      errorCode(
        "failed_precondition",
        /set SEED_DAEMON_KEYSTORE_PASSPHRASE to open and migrate them/,
      ),
    );
    await assert.rejects(
      openKeystore(db, noKek, "not it"),
      errorCode(
        "failed_precondition",
        /^wrong keystore passphrase \(SEED_DAEMON_KEYSTORE_PASSPHRASE\); nothing was changed$/,
      ),
    );
    db.close();
    assert.deepEqual(readFileSync(join(dir, "seed.db")), bytes, "nothing written");
    assert.equal(existsSync(configDir), false, "no KEK generated");

    db = openDatabase(dir);
    let ks = await openKeystore(db, KEK_ENV, LEGACY_PASSPHRASE);
    assert.deepEqual(ks.migration, { from: "passphrase", keys: 2 });
    assert.equal(ks.kekSource, "env");
    for (const k of ["keystore.kdf_salt", "keystore.kdf_params", "keystore.verifier"]) {
      assert.equal(meta(db, k), undefined, `${k} is gone`);
    }
    assert.deepEqual(await seedOf(ks, "main"), FIXTURE_SEEDS[0]);
    assert.deepEqual(await seedOf(ks, "legal"), FIXTURE_SEEDS[1]);
    ks.dispose();
    db.close();
    assertNoSeedOnDisk(dir, FIXTURE_SEEDS, "after the migration");
    const file = readFileSync(join(dir, "seed.db"));
    for (const old of oldSealed)
      assert.ok(!file.includes(old), "the old sealed seeds are overwritten");

    // From now on the KEK alone opens it; the passphrase is no longer needed.
    db = openDatabase(dir);
    ks = await openKeystore(db);
    assert.equal(ks.migration, undefined);
    assert.ok(sign(ks, "main", FIXTURE_SEEDS[0] as Uint8Array));
    db.close();
  });

  it("wraps the data key under a passphrase KEK (Argon2id) when that is the source", async () => {
    const dir = tempDir();
    const env = {
      SEED_DAEMON_KEYSTORE_PASSPHRASE: "keystore passphrase \u00e9",
      SEED_DAEMON_KEYCHAIN: "off",
    };
    const seed = newSeed();
    let db = openDatabase(dir);
    const ks = await openKeystore(db, env);
    assert.equal(ks.kekSource, "passphrase");
    const recorded = JSON.parse(meta(db, "keystore.kek") as string);
    assert.deepEqual(recorded.kdf, { t: 3, m: 65536, p: 4 });
    assert.equal(Buffer.from(recorded.salt, "base64").length, 16);
    ks.register("main", seed);
    db.close();
    db = openDatabase(dir);
    await assert.rejects(
      openKeystore(db, { ...env, SEED_DAEMON_KEYSTORE_PASSPHRASE: "not it" }),
      errorCode(
        "failed_precondition",
        /^wrong keystore passphrase \(SEED_DAEMON_KEYSTORE_PASSPHRASE\)/,
      ),
    );
    await assert.rejects(
      openKeystore(db, { SEED_DAEMON_KEYCHAIN: "off" }),
      /set SEED_DAEMON_KEYSTORE_PASSPHRASE$/,
    );
    assert.ok(sign(await openKeystore(db, env), "main", seed));
    db.close();
  });

  it("rekey re-wraps the data key only: the old KEK opens nothing, the new one does, the sealed seeds are unchanged", async () => {
    const dir = tempDir();
    const seeds = [newSeed(), newSeed()];
    let db = openDatabase(dir);
    let ks = await openKeystore(db);
    for (const [i, s] of seeds.entries()) ks.register(`k${i}`, s);
    const sealed = () => db.prepare("SELECT name, seed FROM keys ORDER BY name").all();
    const sealedBefore = sealed();
    const oldWrapped = meta(db, "keystore.data_key") as Buffer;

    const newEnv = {
      SEED_DAEMON_KEK: randomBytes(32).toString("base64"),
      SEED_DAEMON_KEYCHAIN: "off",
    };
    const next = await new KekResolver({ env: newEnv, dataDir: dir }).forNew();
    assert.deepEqual(ks.rekey(next.kek), { source: "env" });
    assert.throws(() => ks.rekey(next.kek), errorCode("failed_precondition", /already in use/));
    next.kek.dispose();
    assert.deepEqual(sealed(), sealedBefore, "the sealed seeds are untouched");
    assert.ok(sign(ks, "k0", seeds[0] as Uint8Array), "the open keystore keeps signing");
    ks.dispose();
    db.close();
    assert.ok(
      !Buffer.concat(dbFiles(dir)).includes(oldWrapped),
      "the old wrapped data key is overwritten",
    );

    db = openDatabase(dir);
    await assert.rejects(openKeystore(db), errorCode("failed_precondition", /^wrong KEK/));
    ks = await openKeystore(db, newEnv);
    assert.deepEqual(sealed(), sealedBefore);
    assert.ok(sign(ks, "k1", seeds[1] as Uint8Array));
    db.close();
  });
});
