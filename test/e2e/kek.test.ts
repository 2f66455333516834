/**
 * Keys at rest with the real binary (issue 11): every KEK source keeps a key across a restart
 * and signs with it, GetInfo and `seed-daemon info` name the source, the wrong or a missing KEK
 * stops start-up with exit 2 and changes nothing, older keystores migrate with no seed left on
 * disk, a copied data dir holds no seed, and `keys rekey` moves the data key to a new KEK.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { base58btc } from "multiformats/bases/base58";
import nacl from "tweetnacl";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor } from "../helpers/clients.js";
import {
  BIN,
  cleanEnv,
  removeDir,
  runCli,
  startDaemon,
  type TestDaemon,
  tempDir,
} from "../helpers/daemon.js";
import {
  type SecretService,
  secretServiceSkip,
  startSecretService,
} from "../helpers/secret-service.js";

const VECTOR = [...Array<string>(11).fill("abandon"), "about"];
const VECTOR_ID = "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f";
const VECTOR_SEED = keyFromMnemonic(VECTOR, "");
const LEGAL = "legal winner thank year wave sausage worth useful legal winner thank yellow".split(
  " ",
);
const LEGAL_SEED = keyFromMnemonic(LEGAL, "");
const FIXTURES = join(import.meta.dirname, "..", "store", "fixtures");

/** Every text form a seed could leak in. */
function forms(seed: Uint8Array): Buffer[] {
  const b = Buffer.from(seed);
  return [b, ...(["hex", "base64", "base64url"] as const).map((e) => Buffer.from(b.toString(e)))];
}

/** Every file under `dir`, recursively, with its bytes. */
function allFiles(dir: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else if (e.isFile()) out.push([p, readFileSync(p)]);
  }
  return out;
}

function assertNoSeed(dir: string, seeds: readonly Uint8Array[], when: string): void {
  const files = allFiles(dir);
  assert.ok(files.length > 0, `files in ${dir}`);
  for (const [path, bytes] of files) {
    for (const seed of seeds) {
      for (const f of forms(seed)) assert.ok(!bytes.includes(f), `a seed in ${path} ${when}`);
    }
  }
}

function publicKeyOf(principal: string): Uint8Array {
  const bytes = base58btc.decode(principal);
  assert.deepEqual([bytes[0], bytes[1]], [0xed, 0x01]);
  return bytes.subarray(2);
}

async function signsWith(d: TestDaemon, name: string, principal: string): Promise<void> {
  const data = randomBytes(24);
  const { signature } = await clientFor(Daemon, "connect", d, d.token).signData({
    signingKeyName: name,
    data,
  });
  assert.ok(nacl.sign.detached.verify(data, signature, publicKeyOf(principal)), "signature");
}

/** Runs the daemon expecting it to refuse to start; returns its exit code and output. */
function refuses(dataDir: string, env: Record<string, string | undefined>) {
  const r = spawnSync(
    process.execPath,
    [BIN, "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
    { env: cleanEnv(env), encoding: "utf8", timeout: 60_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A KEK file as an operator makes one (`openssl rand -base64 32 > f; chmod 600 f`). */
function newKekFile(dir: string, name = "kek"): { path: string; text: string } {
  const text = randomBytes(32).toString("base64");
  const path = join(dir, name);
  writeFileSync(path, `${text}\n`, { mode: 0o600 });
  return { path, text };
}

/** Names and sealed seeds, read straight from seed.db. */
function sealedRows(dataDir: string): unknown[] {
  const db = new Database(join(dataDir, "seed.db"), { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT name, seed, encrypted FROM keys ORDER BY name").all();
  } finally {
    db.close();
  }
}

function snapshot(dir: string): Map<string, Buffer> {
  return new Map(allFiles(dir));
}

function assertUnchanged(dir: string, before: Map<string, Buffer>, what: string): void {
  const after = snapshot(dir);
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), `${what}: same files`);
  for (const [p, b] of before) assert.ok(after.get(p)?.equals(b), `${what}: ${p} unchanged`);
}

function oneLine(out: string): void {
  assert.equal(out.trim().split("\n").length, 1, `one line: ${out}`);
}

describe("each KEK source", () => {
  for (const source of ["file", "env", "passphrase", "generated-file"] as const) {
    test(`${source}: a key survives a restart and signs; GetInfo and info name the source`, async () => {
      const dir = tempDir();
      const dataDir = join(dir, "data");
      const configHome = join(dir, "config");
      const env: Record<string, string> = { XDG_CONFIG_HOME: configHome };
      if (source === "file") env.SEED_DAEMON_KEK_FILE = newKekFile(dir).path;
      if (source === "env") env.SEED_DAEMON_KEK = randomBytes(32).toString("base64");
      if (source === "passphrase")
        env.SEED_DAEMON_KEYSTORE_PASSPHRASE = `pass-${randomBytes(6).toString("hex")}`;
      const d1 = await startDaemon({ dataDir, env });
      try {
        const c = clientFor(Daemon, "connect", d1, d1.token);
        assert.equal((await c.getInfo({})).kekSource, source);
        const key = await c.registerKey({ mnemonic: VECTOR, name: "main" });
        assert.equal(key.publicKey, VECTOR_ID);
        const info = await runCli(["info", "--data-dir", dataDir, "--json"], { env });
        assert.equal(info.code, 0, info.stderr);
        assert.equal(JSON.parse(info.stdout).kekSource, source);
        const human = await runCli(["info", "--data-dir", dataDir], { env });
        assert.match(human.stdout, new RegExp(`^kek source:\\s+${source}$`, "m"));
        assertNoSeed(dataDir, [VECTOR_SEED], "while the daemon runs");
      } finally {
        assert.equal((await d1.stop()).code, 0);
      }
      assertNoSeed(dataDir, [VECTOR_SEED], "after it stopped");
      const generated = existsSync(join(configHome, "seed-daemon"))
        ? readdirSync(join(configHome, "seed-daemon"))
        : [];
      if (source === "generated-file") {
        assert.equal(generated.length, 1, "one generated KEK file");
        const file = join(configHome, "seed-daemon", generated[0] as string);
        assert.equal(statSync(file).mode & 0o777, 0o600);
        const warnings = d1
          .output()
          .split("\n")
          .filter((l) => l.includes("generated file"));
        assert.equal(warnings.length, 1, "one warning line");
        assert.equal(JSON.parse(warnings[0] ?? "{}").level, 40);
        assert.match(
          warnings[0] ?? "",
          /SEED_DAEMON_KEK_FILE.*OS keychain.*SEED_DAEMON_KEYSTORE_PASSPHRASE/,
        );
      } else {
        assert.deepEqual(generated, [], "no KEK generated");
        assert.ok(!d1.output().includes("generated file"));
      }
      for (const secret of Object.values(env).filter((v) => v !== configHome)) {
        assert.ok(!d1.output().includes(secret), "no KEK source value in the logs");
      }
      const kekText =
        source === "file" ? readFileSync(env.SEED_DAEMON_KEK_FILE as string, "utf8").trim() : "";
      if (kekText !== "") assert.ok(!d1.output().includes(kekText), "no KEK in the logs");

      const d2 = await startDaemon({ dataDir, env });
      try {
        await signsWith(d2, "main", VECTOR_ID);
        assert.equal((await clientFor(Daemon, "grpc", d2, d2.token).getInfo({})).kekSource, source);
      } finally {
        assert.equal((await d2.stop()).code, 0);
        removeDir(dir);
      }
    });
  }
});

describe("a wrong, missing or unsafe KEK", () => {
  test("the wrong KEK exits 2 and changes nothing; a missing or unsafe KEK file is refused, and none is generated", async () => {
    const dir = tempDir();
    const dataDir = join(dir, "data");
    const configHome = join(dir, "config");
    const kek = newKekFile(dir, "right");
    const d = await startDaemon({ dataDir, env: { SEED_DAEMON_KEK_FILE: kek.path } });
    await clientFor(Daemon, "connect", d, d.token).registerKey({ mnemonic: VECTOR, name: "main" });
    assert.equal((await d.stop()).code, 0);
    const before = snapshot(dataDir);

    const wrong = newKekFile(dir, "wrong");
    for (const env of [{ SEED_DAEMON_KEK_FILE: wrong.path }, { SEED_DAEMON_KEK: wrong.text }]) {
      const r = refuses(dataDir, { ...env, XDG_CONFIG_HOME: configHome });
      assert.equal(r.code, 2, r.out);
      oneLine(r.out);
      assert.match(
        r.out,
        /^seed-daemon: cannot open the keystore in .*seed\.db: wrong KEK: the KEK from SEED_DAEMON_KEK.* does not open the keystore's data key \(wrapped by a KEK from SEED_DAEMON_KEK_FILE \(.*right\)\); nothing was changed$/m,
      );
      assert.ok(!r.out.includes(wrong.text) && !r.out.includes(kek.text), "no KEK in the message");
      assertUnchanged(dataDir, before, "wrong KEK");
    }

    const missing = join(dir, "secrets", "seed-daemon-kek");
    const gone = refuses(dataDir, { SEED_DAEMON_KEK_FILE: missing, XDG_CONFIG_HOME: configHome });
    assert.equal(gone.code, 2, gone.out);
    oneLine(gone.out);
    assert.match(
      gone.out,
      /SEED_DAEMON_KEK_FILE .*seed-daemon-kek does not exist; it is configured, so no new KEK is generated/,
    );
    assertUnchanged(dataDir, before, "missing KEK file");
    // Not even for a new keystore: a container without its secret fails fast.
    const fresh = join(dir, "fresh");
    const none = refuses(fresh, { SEED_DAEMON_KEK_FILE: missing, XDG_CONFIG_HOME: configHome });
    assert.equal(none.code, 2, none.out);
    assert.equal(existsSync(missing), false);
    assert.equal(existsSync(join(fresh, "seed.db")), false, "not even an empty seed.db");
    assert.equal(existsSync(configHome), false, "no KEK generated anywhere");

    chmodSync(kek.path, 0o644);
    const unsafe = refuses(dataDir, { SEED_DAEMON_KEK_FILE: kek.path });
    assert.equal(unsafe.code, 2, unsafe.out);
    oneLine(unsafe.out);
    assert.match(unsafe.out, /has mode 0644; it must be 0600 or 0400/);
    assertUnchanged(dataDir, before, "unsafe KEK file");

    // None at all: the recorded source is named, and no KEK file is generated in its place.
    const unset = refuses(dataDir, { XDG_CONFIG_HOME: configHome });
    assert.equal(unset.code, 2, unset.out);
    assert.match(
      unset.out,
      /wrapped by a KEK from SEED_DAEMON_KEK_FILE .*: set SEED_DAEMON_KEK_FILE or SEED_DAEMON_KEK/,
    );
    assert.equal(existsSync(configHome), false);
    assertUnchanged(dataDir, before, "no KEK");
    removeDir(dir);
  });

  test("a copied data dir without the KEK yields no seed and does not start", async () => {
    const dir = tempDir();
    const dataDir = join(dir, "data");
    const configHome = join(dir, "config");
    const d = await startDaemon({ dataDir, env: { XDG_CONFIG_HOME: configHome } });
    const c = clientFor(Daemon, "connect", d, d.token);
    await c.registerKey({ mnemonic: VECTOR, name: "main" });
    await c.registerKey({ mnemonic: LEGAL, name: "legal" });
    // Copied while it runs (WAL and all), as a backup tool or a volume snapshot would.
    const copy = join(dir, "copy");
    cpSync(dataDir, copy, { recursive: true });
    assert.equal((await d.stop()).code, 0);
    assertNoSeed(copy, [VECTOR_SEED, LEGAL_SEED], "in the copy");
    assertNoSeed(dataDir, [VECTOR_SEED, LEGAL_SEED], "in the data dir");

    // Elsewhere (another machine, another user): no KEK file at the recorded path.
    rmSync(configHome, { recursive: true, force: true });
    const other = join(dir, "other-config");
    const r = refuses(copy, { XDG_CONFIG_HOME: other });
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /the generated KEK file .* does not exist; restore it from your backup/);
    assert.equal(existsSync(other), false, "no new KEK for an existing keystore");
    const guess = refuses(copy, { SEED_DAEMON_KEK: randomBytes(32).toString("base64") });
    assert.equal(guess.code, 2, guess.out);
    assert.match(guess.out, /wrong KEK/);
    removeDir(dir);
  });
});

describe("older keystores", () => {
  test("a plaintext keystore (with plaintext in its WAL) migrates at the first start: no seed in seed.db, -wal or -shm", async () => {
    const dir = tempDir();
    const src = join(dir, "old");
    mkdirSync(src, { mode: 0o700 });
    copyFileSync(join(FIXTURES, "legacy-plaintext.db"), join(src, "seed.db"));
    const third = randomBytes(32);
    const thirdId = principalToString(publicKeyFromSeed(third));
    const raw = new Database(join(src, "seed.db"));
    raw.pragma("journal_mode = WAL");
    raw.pragma("wal_autocheckpoint = 0");
    raw
      .prepare(
        "INSERT INTO keys (name, public_key, seed, encrypted, create_time) VALUES (?, ?, ?, 0, ?)",
      )
      .run("third", thirdId, third, Date.now());
    // The files as a killed old daemon leaves them: the last write only in the WAL.
    const dataDir = join(dir, "data");
    mkdirSync(dataDir, { mode: 0o700 });
    for (const f of ["seed.db", "seed.db-wal", "seed.db-shm"])
      copyFileSync(join(src, f), join(dataDir, f));
    raw.close();
    const seeds = [VECTOR_SEED, LEGAL_SEED, third];
    const before = Buffer.concat(allFiles(dataDir).map(([, b]) => b));
    for (const s of seeds) assert.ok(before.includes(Buffer.from(s)), "control: plaintext before");

    const env = { SEED_DAEMON_KEK: randomBytes(32).toString("base64") };
    const d = await startDaemon({ dataDir, env });
    try {
      const line = d
        .output()
        .split("\n")
        .find((l) => l.includes("keystore migrated to envelope encryption"));
      assert.ok(line, d.output());
      assert.deepEqual(
        (({ from, keys, kek_source }) => ({ from, keys, kek_source }))(JSON.parse(line)),
        { from: "plaintext", keys: 3, kek_source: "env" },
      );
      for (const f of ["seed.db", "seed.db-wal", "seed.db-shm"]) {
        if (!existsSync(join(dataDir, f))) continue;
        const bytes = readFileSync(join(dataDir, f));
        for (const s of seeds)
          for (const form of forms(s)) assert.ok(!bytes.includes(form), `a seed in ${f}`);
      }
      await signsWith(d, "main", VECTOR_ID);
      await signsWith(d, "legal", principalToString(publicKeyFromSeed(LEGAL_SEED)));
      await signsWith(d, "third", thirdId);
      // A key registered after the migration is sealed too.
      await clientFor(Daemon, "connect", d, d.token).registerKey({
        mnemonic: "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong".split(" "),
        name: "after",
      });
      assertNoSeed(
        dataDir,
        [...seeds, keyFromMnemonic("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong".split(" "))],
        "after registering",
      );
    } finally {
      assert.equal((await d.stop()).code, 0);
    }
    assertNoSeed(dataDir, seeds, "after stop");
    for (const row of sealedRows(dataDir) as { encrypted: number }[])
      assert.equal(row.encrypted, 1);
    removeDir(dir);
  });

  test("a passphrase keystore migrates with its passphrase, which then becomes the KEK source", async () => {
    const dir = tempDir();
    const dataDir = join(dir, "data");
    mkdirSync(dataDir, { mode: 0o700 });
    copyFileSync(join(FIXTURES, "legacy-passphrase.db"), join(dataDir, "seed.db"));
    const before = readFileSync(join(dataDir, "seed.db"));
    const missing = refuses(dataDir, {});
    assert.equal(missing.code, 2, missing.out);
    assert.match(missing.out, /set SEED_DAEMON_KEYSTORE_PASSPHRASE to open and migrate them/);
    assert.ok(readFileSync(join(dataDir, "seed.db")).equals(before), "seed.db unchanged");

    const env = { SEED_DAEMON_KEYSTORE_PASSPHRASE: "legacy fixture passphrase" };
    const d = await startDaemon({ dataDir, env });
    try {
      assert.match(d.output(), /"from":"passphrase","keys":2,"kek_source":"passphrase"/);
      assert.equal(
        (await clientFor(Daemon, "connect", d, d.token).getInfo({})).kekSource,
        "passphrase",
      );
      await signsWith(d, "main", VECTOR_ID);
      assert.ok(!d.output().includes(env.SEED_DAEMON_KEYSTORE_PASSPHRASE));
    } finally {
      assert.equal((await d.stop()).code, 0);
    }
    assertNoSeed(dataDir, [VECTOR_SEED, LEGAL_SEED], "after the migration");
    removeDir(dir);
  });
});

describe("seed-daemon keys rekey", () => {
  interface AuditLine {
    event: string;
    method: string;
    outcome: string;
    reason?: string;
  }
  const audits = (file: string): AuditLine[] =>
    readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as AuditLine);

  test("generated file: a new KEK wraps the data key, the old one opens nothing, the seeds are untouched, audited", async () => {
    const dir = tempDir();
    const dataDir = join(dir, "data");
    const configHome = join(dir, "config");
    const kekDir = join(configHome, "seed-daemon");
    const auditLog = join(dir, "audit.jsonl");
    const env = { XDG_CONFIG_HOME: configHome };
    const d = await startDaemon({ dataDir, env });
    await clientFor(Daemon, "connect", d, d.token).registerKey({ mnemonic: VECTOR, name: "main" });

    const busy = await runCli(["keys", "rekey", "--data-dir", dataDir, "--audit-log", auditLog], {
      env,
    });
    assert.equal(busy.code, 2, busy.stderr);
    assert.match(busy.stderr, /a seed-daemon \(pid \d+\) is using .*; stop it first/);
    assert.equal((await d.stop()).code, 0);

    const [oldName] = readdirSync(kekDir);
    const oldKek = readFileSync(join(kekDir, oldName as string), "utf8").trim();
    const rowsBefore = sealedRows(dataDir);
    const r = await runCli(["keys", "rekey", "--data-dir", dataDir, "--audit-log", auditLog], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^rekeyed: the data key of .*seed\.db is now wrapped by a KEK from the generated KEK file /,
    );
    assert.match(r.stdout, /removed the old KEK file/);
    const names = readdirSync(kekDir);
    assert.equal(names.length, 1);
    assert.notEqual(names[0], oldName, "a new file; the old one is gone");
    assert.deepEqual(sealedRows(dataDir), rowsBefore, "the sealed seeds are untouched");
    assert.ok(!`${r.stdout}${r.stderr}`.includes(oldKek));

    const records = audits(auditLog).filter((a) => a.event === "key.rekey");
    assert.deepEqual(
      records.map((a) => [a.method, a.outcome]),
      [
        ["keys rekey", "error"],
        ["keys rekey", "ok"],
      ],
    );
    assert.match(records[0]?.reason ?? "", /stop it first/);
    assert.equal(records[1]?.reason, "KEK generated-file -> generated-file");
    assert.ok(!readFileSync(auditLog, "utf8").includes(oldKek));

    const old = refuses(dataDir, { SEED_DAEMON_KEK: oldKek });
    assert.equal(old.code, 2, old.out);
    assert.match(old.out, /wrong KEK/);
    const d2 = await startDaemon({ dataDir, env });
    try {
      await signsWith(d2, "main", VECTOR_ID);
    } finally {
      await d2.stop();
    }

    // To a passphrase: read from stdin; the next start needs it.
    const pass = `new-pass-${randomBytes(6).toString("hex")}`;
    const toPass = await runCli(
      ["keys", "rekey", "--data-dir", dataDir, "--to", "passphrase", "--json"],
      {
        env,
        input: `${pass}\n`,
      },
    );
    assert.equal(toPass.code, 0, toPass.stderr);
    const out = JSON.parse(toPass.stdout);
    assert.equal(out.from, "generated-file");
    assert.equal(out.to, "passphrase");
    assert.match(out.next, /set SEED_DAEMON_KEYSTORE_PASSPHRASE/);
    assert.deepEqual(readdirSync(kekDir), [], "the generated KEK is retired");
    assert.ok(!`${toPass.stdout}${toPass.stderr}`.includes(pass));
    const noPass = refuses(dataDir, env);
    assert.equal(noPass.code, 2, noPass.out);
    assert.match(
      noPass.out,
      /wrapped by a KEK from SEED_DAEMON_KEYSTORE_PASSPHRASE: set SEED_DAEMON_KEYSTORE_PASSPHRASE/,
    );
    assert.deepEqual(sealedRows(dataDir), rowsBefore);
    const d3 = await startDaemon({
      dataDir,
      env: { ...env, SEED_DAEMON_KEYSTORE_PASSPHRASE: pass },
    });
    try {
      await signsWith(d3, "main", VECTOR_ID);
    } finally {
      await d3.stop();
      removeDir(dir);
    }
  });

  test("a KEK file: the new one comes from --new-kek-file; the old file no longer opens the keystore", async () => {
    const dir = tempDir();
    const dataDir = join(dir, "data");
    const first = newKekFile(dir, "first");
    const second = newKekFile(dir, "second");
    const env = { SEED_DAEMON_KEK_FILE: first.path };
    const d = await startDaemon({ dataDir, env });
    await clientFor(Daemon, "connect", d, d.token).registerKey({ mnemonic: VECTOR, name: "main" });
    assert.equal((await d.stop()).code, 0);
    const rowsBefore = sealedRows(dataDir);

    const bare = await runCli(["keys", "rekey", "--data-dir", dataDir], { env });
    assert.equal(bare.code, 2, bare.stderr);
    oneLine(
      bare.stderr
        .split("\n")
        .filter((l) => !l.startsWith("{"))
        .join("\n"),
    );
    assert.match(
      bare.stderr,
      /the KEK comes from SEED_DAEMON_KEK_FILE .*: give the new one with --new-kek-file PATH/,
    );
    const same = await runCli(
      ["keys", "rekey", "--data-dir", dataDir, "--new-kek-file", first.path],
      { env },
    );
    assert.equal(same.code, 2, same.stderr);
    assert.match(same.stderr, /the new KEK is the one already in use; nothing was changed/);

    const r = await runCli(
      ["keys", "rekey", "--data-dir", dataDir, "--new-kek-file", second.path, "--json"],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual([out.from, out.to], ["file", "file"]);
    assert.match(out.next, new RegExp(`SEED_DAEMON_KEK_FILE=${second.path}`));
    assert.ok(existsSync(first.path), "the user's old file is left to the user");
    assert.deepEqual(sealedRows(dataDir), rowsBefore);
    for (const text of [first.text, second.text])
      assert.ok(!`${r.stdout}${r.stderr}`.includes(text));

    const old = refuses(dataDir, env);
    assert.equal(old.code, 2, old.out);
    assert.match(
      old.out,
      /wrong KEK: the KEK from SEED_DAEMON_KEK_FILE .*first\) does not open the keystore's data key \(wrapped by a KEK from SEED_DAEMON_KEK_FILE .*second\)\)/,
    );
    const d2 = await startDaemon({ dataDir, env: { SEED_DAEMON_KEK_FILE: second.path } });
    try {
      await signsWith(d2, "main", VECTOR_ID);
      assert.equal(
        (await clientFor(Daemon, "connect", d2, d2.token).getInfo({})).kekSource,
        "file",
      );
    } finally {
      await d2.stop();
      removeDir(dir);
    }
  });
});

describe("the OS keychain source, against a real Secret Service", {
  skip: secretServiceSkip(),
}, () => {
  let ss: SecretService | undefined;
  before(async () => {
    ss = await startSecretService();
  });
  after(async () => {
    await ss?.stop();
  });

  test("a new keystore keeps its KEK in the keychain: a key survives a restart and signs; without the keychain the daemon refuses to start", async () => {
    const service = ss as SecretService;
    const dir = tempDir();
    const dataDir = join(dir, "data");
    // The bus and the keyring's HOME; the keychain on (the test helpers turn it off by default).
    const env = { ...service.env, SEED_DAEMON_KEYCHAIN: undefined };
    const d1 = await startDaemon({ dataDir, env });
    try {
      const c = clientFor(Daemon, "connect", d1, d1.token);
      assert.equal((await c.getInfo({})).kekSource, "keychain");
      await c.registerKey({ mnemonic: VECTOR, name: "main" });
    } finally {
      assert.equal((await d1.stop()).code, 0);
    }
    // The KEK is an item of service seed-daemon, 32 bytes in base64, and in no file of the
    // data dir or the keyring's home other than the keyring itself.
    const item = await service.lookup({ service: "seed-daemon" });
    assert.ok(item !== null, "a keychain item for the KEK");
    assert.equal(Buffer.from(item, "base64").length, 32);
    for (const [path, bytes] of allFiles(dataDir)) {
      assert.ok(!bytes.includes(Buffer.from(item)), `the KEK in ${path}`);
    }
    assert.ok(!d1.output().includes(item), "no KEK in the logs");
    assert.ok(!d1.output().includes("generated file"), "no KEK file generated");
    assertNoSeed(dataDir, [VECTOR_SEED], "with the KEK in the keychain");

    const d2 = await startDaemon({ dataDir, env });
    try {
      await signsWith(d2, "main", VECTOR_ID);
    } finally {
      assert.equal((await d2.stop()).code, 0);
    }

    // The keystore records that its KEK is in the keychain: with the keychain off, the daemon
    // exits 2 and changes nothing, instead of making a new KEK.
    const before = snapshot(dataDir);
    const off = refuses(dataDir, { ...service.env, SEED_DAEMON_KEYCHAIN: "off" });
    assert.equal(off.code, 2, off.out);
    oneLine(off.out);
    assert.match(off.out, /keychain/i);
    assertUnchanged(dataDir, before, "keychain off");
    removeDir(dir);
  });
});
