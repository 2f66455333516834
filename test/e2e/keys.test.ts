import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { base58btc } from "multiformats/bases/base58";
import nacl from "tweetnacl";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { keyFromMnemonic } from "../../src/identity/keys.js";
import { clientFor, codeOf, type Protocol } from "../helpers/clients.js";
import {
  BIN,
  cleanEnv,
  removeDir,
  startDaemon,
  type TestDaemon,
  tempDir,
} from "../helpers/daemon.js";

const VECTOR = [...Array<string>(11).fill("abandon"), "about"];
const VECTOR_ID = "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f";
// Random per run, so a match in the logs can only come from this run's requests.
const BIP39_PASSPHRASE = `bip39-pass-${Math.random().toString(36).slice(2)}`;
const EXPORT_PASSWORD = `export-pw-${Math.random().toString(36).slice(2)}`;
const WRONG_PASSWORD = `wrong-pw-${Math.random().toString(36).slice(2)}`;
const PROTOCOLS: Protocol[] = ["connect", "grpc-web", "grpc"];

/** The 32-byte Ed25519 public key inside a `z6Mk…` principal, decoded independently. */
function publicKeyOf(principal: string): Uint8Array {
  const bytes = base58btc.decode(principal);
  assert.equal(bytes.length, 34);
  assert.deepEqual([bytes[0], bytes[1]], [0xed, 0x01]);
  return bytes.subarray(2);
}

/** Every text form a seed could leak in. */
function encodings(seed: Uint8Array): string[] {
  const b = Buffer.from(seed);
  return [b.toString("hex"), b.toString("base64"), b.toString("base64url")];
}

function includesBytes(haystack: Buffer, needle: Uint8Array): boolean {
  return haystack.indexOf(Buffer.from(needle)) !== -1;
}

function readDbFiles(dataDir: string): Buffer {
  const parts = ["seed.db", "seed.db-wal"]
    .map((f) => join(dataDir, f))
    .filter((p) => existsSync(p))
    .map((p) => readFileSync(p));
  return Buffer.concat(parts);
}

interface AuditRecord {
  time: string;
  event: string;
  method: string;
  key_name?: string;
  remote_addr: string;
  principal?: string;
  outcome: string;
  reason?: string;
}

function auditLines(text: string): AuditRecord[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** Runs the daemon expecting it to refuse to start. */
function runExpectingExit(dataDir: string, env: Record<string, string | undefined>) {
  const r = spawnSync(
    process.execPath,
    [BIN, "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
    { env: cleanEnv(env), encoding: "utf8", timeout: 30_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("keys over RPC", () => {
  let d: TestDaemon;
  let dir: string;
  let audit: string;
  let files: string;
  let daemon: ReturnType<typeof clientFor<typeof Daemon>>;
  const vectorSeed = keyFromMnemonic(VECTOR, "");
  const passSeed = keyFromMnemonic(VECTOR, BIP39_PASSPHRASE);
  const usedMnemonics: string[][] = [VECTOR];

  before(async () => {
    dir = tempDir();
    audit = join(dir, "audit.jsonl");
    files = join(dir, "files");
    mkdirSync(files, { mode: 0o700 });
    d = await startDaemon({ args: ["--log-level", "trace", "--audit-log", audit] });
    daemon = clientFor(Daemon, "connect", d, d.token);
  });
  after(async () => {
    await d.stop("SIGKILL");
    removeDir(dir);
  });

  async function names(): Promise<string[]> {
    return (await daemon.listKeys({})).keys.map((k) => k.name);
  }

  async function fresh(): Promise<string[]> {
    const words = (await daemon.genMnemonic({})).mnemonic;
    usedMnemonics.push(words);
    return words;
  }

  test("RegisterKey derives the documented vector", async () => {
    const key = await daemon.registerKey({ mnemonic: VECTOR, name: "main" });
    assert.equal(key.publicKey, VECTOR_ID);
    assert.equal(key.accountId, VECTOR_ID);
    assert.equal(key.name, "main");
    const list = await daemon.listKeys({});
    assert.deepEqual(
      list.keys.map((k) => [k.name, k.publicKey, k.accountId]),
      [["main", VECTOR_ID, VECTOR_ID]],
    );
  });

  for (const protocol of PROTOCOLS) {
    test(`SignData over ${protocol} verifies with tweetnacl`, async () => {
      const client = clientFor(Daemon, protocol, d, d.token);
      const data = new Uint8Array(Buffer.from(`message over ${protocol}\x00\xff`, "latin1"));
      const { signature } = await client.signData({ signingKeyName: "main", data });
      assert.equal(signature.length, 64);
      const pub = publicKeyOf(VECTOR_ID);
      assert.ok(nacl.sign.detached.verify(data, signature, pub), "signature verifies");
      const other = Uint8Array.from(data);
      other[0] = (other[0] ?? 0) ^ 1;
      assert.equal(nacl.sign.detached.verify(other, signature, pub), false);
      // Ed25519 is deterministic: the same key and data give the same signature.
      assert.deepEqual(
        (await client.signData({ signingKeyName: "main", data })).signature,
        signature,
      );
    });
  }

  test("SignData: missing key is not_found, empty data is invalid_argument", async () => {
    const data = new Uint8Array([1, 2, 3]);
    assert.equal(await codeOf(daemon.signData({ signingKeyName: "nope", data })), Code.NotFound);
    assert.equal(
      await codeOf(daemon.signData({ signingKeyName: "main", data: new Uint8Array() })),
      Code.InvalidArgument,
    );
    assert.equal(await codeOf(daemon.signData({ signingKeyName: "", data })), Code.InvalidArgument);
  });

  test("RegisterKey rejects duplicates, bad mnemonics and bad names", async () => {
    // Same name, another key.
    assert.equal(
      await codeOf(daemon.registerKey({ mnemonic: await fresh(), name: "main" })),
      Code.AlreadyExists,
    );
    // Same key, another name.
    assert.equal(
      await codeOf(daemon.registerKey({ mnemonic: VECTOR, name: "main-again" })),
      Code.AlreadyExists,
    );
    const badChecksum = Array<string>(12).fill("abandon");
    const err = await daemon.registerKey({ mnemonic: badChecksum, name: "bad" }).catch((e) => e);
    assert.equal(ConnectError.from(err).code, Code.InvalidArgument);
    assert.match(ConnectError.from(err).rawMessage, /checksum/);
    assert.equal(
      await codeOf(daemon.registerKey({ mnemonic: VECTOR.slice(0, 11), name: "short" })),
      Code.InvalidArgument,
    );
    assert.equal(
      await codeOf(daemon.registerKey({ mnemonic: [], name: "empty" })),
      Code.InvalidArgument,
    );
    for (const name of ["", " lead", "tab\there", "x".repeat(129), "bidi\u202e"]) {
      assert.equal(
        await codeOf(daemon.registerKey({ mnemonic: await fresh(), name })),
        Code.InvalidArgument,
        JSON.stringify(name),
      );
    }
    assert.deepEqual(await names(), ["main"]);
  });

  test("GenMnemonic: 12 to 24 words, default 12, anything else invalid_argument", async () => {
    for (const [asked, expected] of [
      [0, 12],
      [12, 12],
      [15, 15],
      [18, 18],
      [21, 21],
      [24, 24],
    ] as const) {
      const { mnemonic } = await daemon.genMnemonic({ wordCount: asked });
      assert.equal(mnemonic.length, expected);
    }
    const a = (await daemon.genMnemonic({})).mnemonic.join(" ");
    const b = (await daemon.genMnemonic({})).mnemonic.join(" ");
    assert.notEqual(a, b);
    for (const bad of [13, 11, 25, -12, 1]) {
      assert.equal(await codeOf(daemon.genMnemonic({ wordCount: bad })), Code.InvalidArgument);
    }
    // A generated mnemonic registers.
    const words = await fresh();
    const key = await daemon.registerKey({ mnemonic: words, name: "generated" });
    assert.match(key.publicKey, /^z6Mk/);
    await daemon.deleteKey({ name: "generated" });
  });

  test("a BIP-39 passphrase gives another account", async () => {
    const key = await daemon.registerKey({
      mnemonic: VECTOR,
      passphrase: BIP39_PASSPHRASE,
      name: "with-pass",
    });
    assert.notEqual(key.publicKey, VECTOR_ID);
    const data = new Uint8Array([9, 9, 9]);
    const { signature } = await daemon.signData({ signingKeyName: "with-pass", data });
    assert.ok(nacl.sign.detached.verify(data, signature, publicKeyOf(key.publicKey)));
    await daemon.deleteKey({ name: "with-pass" });
  });

  test("UpdateKey renames; DeleteKey deletes", async () => {
    const key = await daemon.registerKey({ mnemonic: await fresh(), name: "a" });
    const renamed = await daemon.updateKey({ currentName: "a", newName: "b" });
    assert.equal(renamed.name, "b");
    assert.equal(renamed.publicKey, key.publicKey);
    assert.deepEqual(await names(), ["b", "main"]);
    const data = new Uint8Array([1]);
    assert.equal(await codeOf(daemon.signData({ signingKeyName: "a", data })), Code.NotFound);
    const { signature } = await daemon.signData({ signingKeyName: "b", data });
    assert.ok(nacl.sign.detached.verify(data, signature, publicKeyOf(key.publicKey)));
    assert.equal(
      await codeOf(daemon.updateKey({ currentName: "missing", newName: "c" })),
      Code.NotFound,
    );
    assert.equal(
      await codeOf(daemon.updateKey({ currentName: "b", newName: "main" })),
      Code.AlreadyExists,
    );
    assert.equal(
      await codeOf(daemon.updateKey({ currentName: "b", newName: "" })),
      Code.InvalidArgument,
    );
    await daemon.deleteKey({ name: "b" });
    assert.deepEqual(await names(), ["main"]);
    assert.equal(await codeOf(daemon.deleteKey({ name: "b" })), Code.NotFound);
  });

  test("ExportKey / ImportKey round trip without a password", async () => {
    const path = join(files, "main.hmkey.json");
    const res = await daemon.exportKey({ name: "main", filePath: path });
    assert.equal(res.filePath, path);
    assert.equal(res.publicKey, VECTOR_ID);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const file = JSON.parse(readFileSync(path, "utf8"));
    assert.equal(file.publicKey, VECTOR_ID);
    assert.equal(file.keyB64, Buffer.from(vectorSeed).toString("base64url"));
    assert.equal(file.encryption, undefined);
    assert.ok(!Number.isNaN(Date.parse(file.createTime)));

    // The key is present: importing it again is already_exists, under any name.
    assert.equal(await codeOf(daemon.importKey({ filePath: path })), Code.AlreadyExists);
    assert.equal(
      await codeOf(daemon.importKey({ filePath: path, name: "copy" })),
      Code.AlreadyExists,
    );

    await daemon.deleteKey({ name: "main" });
    assert.deepEqual(await names(), []);
    // The export carries the key's name (an extra member Seed's tools ignore): import keeps it.
    assert.equal(file.name, "main");
    const imported = await daemon.importKey({ filePath: path });
    assert.equal(imported.name, "main");
    assert.equal(imported.publicKey, VECTOR_ID);
    // A file without a name (Seed's own) names the key after its public key.
    const seedFile = join(files, "seed-shaped.hmkey.json");
    const { name: _drop, ...seedShaped } = file;
    writeFileSync(seedFile, JSON.stringify(seedShaped), { mode: 0o600 });
    await daemon.deleteKey({ name: "main" });
    const unnamed = await daemon.importKey({ filePath: seedFile });
    assert.equal(unnamed.name, VECTOR_ID);
    await daemon.updateKey({ currentName: VECTOR_ID, newName: "main" });
    const data = new Uint8Array([7]);
    const { signature } = await daemon.signData({ signingKeyName: "main", data });
    assert.ok(nacl.sign.detached.verify(data, signature, publicKeyOf(VECTOR_ID)));
  });

  test("ExportKey / ImportKey round trip with a password; a wrong one stores nothing", async () => {
    const path = join(files, "main.enc.hmkey.json");
    await daemon.exportKey({ name: "main", filePath: path, password: EXPORT_PASSWORD });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, "utf8");
    const file = JSON.parse(text);
    assert.equal(file.publicKey, VECTOR_ID);
    // Seed's shape, exactly (docs/keys.md).
    assert.deepEqual(
      { ...file.encryption, argon2: { ...file.encryption.argon2, saltB64: "-" } },
      {
        kdf: "argon2id",
        argon2: { memoryCost: 65536, timeCost: 3, parallelism: 4, saltB64: "-" },
        cipher: "xchacha20poly1305",
      },
    );
    assert.equal(Buffer.from(file.encryption.argon2.saltB64, "base64url").length, 16);
    assert.equal(Buffer.from(file.keyB64, "base64url").length, 24 + 32 + 16);
    for (const enc of encodings(vectorSeed)) assert.equal(text.includes(enc), false);
    assert.equal(text.includes(EXPORT_PASSWORD), false);

    await daemon.deleteKey({ name: "main" });
    const wrong = await daemon
      .importKey({ filePath: path, password: WRONG_PASSWORD, name: "main" })
      .catch((e) => ConnectError.from(e));
    assert.ok(wrong instanceof ConnectError);
    assert.equal(wrong.code, Code.PermissionDenied);
    assert.equal(wrong.rawMessage.includes(WRONG_PASSWORD), false);
    assert.deepEqual(await names(), []);
    assert.equal(
      await codeOf(daemon.importKey({ filePath: path, name: "main" })),
      Code.InvalidArgument,
      "no password for an encrypted file",
    );
    assert.deepEqual(await names(), []);

    const key = await daemon.importKey({ filePath: path, password: EXPORT_PASSWORD, name: "main" });
    assert.equal(key.publicKey, VECTOR_ID);
    assert.equal(key.name, "main");
  });

  test("paths must be absolute; nothing is read or written relative to the daemon", async () => {
    const rel = `rel-${process.pid}.hmkey.json`;
    assert.equal(
      await codeOf(daemon.exportKey({ name: "main", filePath: rel })),
      Code.InvalidArgument,
    );
    assert.equal(
      await codeOf(daemon.exportKey({ name: "main", filePath: `./${rel}` })),
      Code.InvalidArgument,
    );
    assert.equal(existsSync(rel), false);
    assert.equal(
      await codeOf(daemon.exportKey({ name: "main", filePath: "" })),
      Code.InvalidArgument,
    );
    assert.equal(await codeOf(daemon.importKey({ filePath: rel })), Code.InvalidArgument);
    assert.equal(await codeOf(daemon.importKey({ filePath: `../${rel}` })), Code.InvalidArgument);
  });

  test("ExportKey never overwrites; a missing key or directory is not_found", async () => {
    const path = join(files, "taken.json");
    writeFileSync(path, "keep me\n", { mode: 0o600 });
    assert.equal(
      await codeOf(daemon.exportKey({ name: "main", filePath: path })),
      Code.AlreadyExists,
    );
    assert.equal(readFileSync(path, "utf8"), "keep me\n");
    assert.equal(
      await codeOf(daemon.exportKey({ name: "nope", filePath: join(files, "nope.json") })),
      Code.NotFound,
    );
    assert.equal(existsSync(join(files, "nope.json")), false);
    assert.equal(
      await codeOf(daemon.exportKey({ name: "main", filePath: join(files, "no-dir", "k.json") })),
      Code.NotFound,
    );
  });

  test("an ExportKey whose directory is unusable fails at once, before any password derivation", async () => {
    const ro = join(files, "read-only");
    mkdirSync(ro, { mode: 0o500 });
    const notDir = join(files, "plain-file");
    writeFileSync(notDir, "x\n", { mode: 0o600 });
    // Fill the daemon's derivation queue: one derivation runs, the rest wait their turn, and a
    // password export that needs a derivation is then refused with resource_exhausted.
    // One controller each: a signal shared by a dozen calls trips Node's listener-leak warning.
    const stops = Array.from({ length: 12 }, () => new AbortController());
    const fillers = stops.map((stop, i) =>
      codeOf(
        daemon.exportKey(
          { name: "main", filePath: join(files, `filler-${i}.json`), password: EXPORT_PASSWORD },
          { signal: stop.signal },
        ),
      ),
    );
    try {
      let full = false;
      for (let i = 0; i < 100 && !full; i++) {
        const probe = await codeOf(
          daemon.exportKey({
            name: "main",
            filePath: join(files, `probe-${i}.json`),
            password: EXPORT_PASSWORD,
          }),
        );
        full = probe === Code.ResourceExhausted;
      }
      assert.ok(full, "the derivation queue filled up");
      const doomed: [string, Code][] = [
        [join(files, "no-dir", "k.json"), Code.NotFound],
        [join(notDir, "k.json"), Code.InvalidArgument],
        ...(process.getuid?.() === 0
          ? []
          : [[join(ro, "k.json"), Code.PermissionDenied] as [string, Code]]),
      ];
      for (const [filePath, code] of doomed) {
        assert.equal(
          await codeOf(daemon.exportKey({ name: "main", filePath, password: EXPORT_PASSWORD })),
          code,
          filePath,
        );
        assert.equal(existsSync(filePath), false);
      }
    } finally {
      for (const stop of stops) stop.abort();
      await Promise.all(fillers);
    }
  });

  test("ImportKey refuses oversized, malformed and mismatched files", async () => {
    const bad = join(files, "bad");
    mkdirSync(bad);
    const valid = JSON.parse(readFileSync(join(files, "main.hmkey.json"), "utf8"));
    const other = await daemon.genMnemonic({});
    usedMnemonics.push(other.mnemonic);
    const otherId = publicKeyPrincipal(keyFromMnemonic(other.mnemonic, ""));
    const cases: Record<string, string> = {
      "big.json": `{"pad":"${"x".repeat(1024 * 1024 + 16)}"}`,
      "not-json.json": "this is not json",
      "array.json": "[]",
      "no-key.json": JSON.stringify({ createTime: valid.createTime, publicKey: VECTOR_ID }),
      "short-key.json": JSON.stringify({ ...valid, keyB64: "AAAA" }),
      "bad-time.json": JSON.stringify({ ...valid, createTime: "yesterday" }),
      "mismatch.json": JSON.stringify({ ...valid, publicKey: otherId }),
    };
    await daemon.deleteKey({ name: "main" });
    for (const [name, text] of Object.entries(cases)) {
      writeFileSync(join(bad, name), text, { mode: 0o600 });
      assert.equal(
        await codeOf(daemon.importKey({ filePath: join(bad, name), name: "main" })),
        Code.InvalidArgument,
        name,
      );
    }
    assert.equal(await codeOf(daemon.importKey({ filePath: bad })), Code.InvalidArgument, "a dir");
    assert.equal(
      await codeOf(daemon.importKey({ filePath: join(bad, "missing.json") })),
      Code.NotFound,
    );
    assert.deepEqual(await names(), []);
    await daemon.importKey({ filePath: join(files, "main.hmkey.json"), name: "main" });
  });

  test("DeleteAllKeys removes every key", async () => {
    await daemon.registerKey({ mnemonic: await fresh(), name: "x1" });
    await daemon.registerKey({ mnemonic: await fresh(), name: "x2" });
    assert.deepEqual(await names(), ["main", "x1", "x2"]);
    await daemon.deleteAllKeys({});
    assert.deepEqual(await names(), []);
    assert.equal(
      await codeOf(daemon.signData({ signingKeyName: "main", data: new Uint8Array([1]) })),
      Code.NotFound,
    );
  });

  test("every audited call left a complete record, ok and failed, and no secret leaked", async () => {
    const before = readFileSync(audit, "utf8");
    await daemon.listKeys({});
    await daemon.genMnemonic({});
    assert.equal(readFileSync(audit, "utf8"), before, "ListKeys / GenMnemonic are not audited");

    assert.equal((await d.stop("SIGTERM")).code, 0);
    const fileText = readFileSync(audit, "utf8");
    const records = auditLines(fileText);
    const out = d.output();
    const fromLog = out
      .split("\n")
      .filter((l) => l.includes('"audit":true'))
      .map((l) => JSON.parse(l) as AuditRecord & { msg: string });
    assert.equal(fromLog.length, records.length, "the log and the file hold the same records");
    assert.deepEqual(
      fromLog.map((r) => [r.event, r.outcome, r.key_name, r.reason]),
      records.map((r) => [r.event, r.outcome, r.key_name, r.reason]),
    );

    for (const r of records) {
      for (const field of ["time", "event", "method", "remote_addr", "outcome"] as const) {
        assert.equal(typeof r[field], "string", `${field} in ${JSON.stringify(r)}`);
      }
      assert.ok(!Number.isNaN(Date.parse(r.time)));
      assert.match(r.remote_addr, /127\.0\.0\.1/);
      assert.ok(["ok", "error", "denied"].includes(r.outcome));
      if (r.outcome !== "ok") assert.match(r.reason ?? "", /^[a-z_]+/, JSON.stringify(r));
      assert.notEqual(r.method, "ListKeys");
      assert.notEqual(r.method, "GenMnemonic");
    }
    const has = (
      event: string,
      method: string,
      outcome: string,
      keyName?: string,
      reason?: RegExp,
    ) =>
      assert.ok(
        records.some(
          (r) =>
            r.event === event &&
            r.method === method &&
            r.outcome === outcome &&
            (keyName === undefined || r.key_name === keyName) &&
            (reason === undefined || reason.test(r.reason ?? "")),
        ),
        `${event} ${outcome} ${keyName ?? ""} ${reason ?? ""}`,
      );
    has("key.register", "RegisterKey", "ok", "main");
    has("key.register", "RegisterKey", "error", "main", /^already_exists/);
    has("key.register", "RegisterKey", "error", "bad", /^invalid_argument: .*checksum/);
    has("key.sign", "SignData", "ok", "main");
    has("key.sign", "SignData", "error", "nope", /^not_found/);
    has("key.sign", "SignData", "error", "main", /^invalid_argument/);
    has("key.rename", "UpdateKey", "ok", "a", /"b"/);
    has("key.rename", "UpdateKey", "error", "missing", /^not_found/);
    has("key.delete", "DeleteKey", "ok", "b");
    has("key.delete", "DeleteKey", "error", "b", /^not_found/);
    has("key.export", "ExportKey", "ok", "main", /main\.hmkey\.json/);
    has("key.export", "ExportKey", "error", "main", /^already_exists.*taken\.json/);
    has("key.export", "ExportKey", "error", "main", /^invalid_argument/);
    has("key.import", "ImportKey", "ok", VECTOR_ID);
    has("key.import", "ImportKey", "ok", "main");
    has("key.import", "ImportKey", "denied", "main", /^permission_denied/);
    has("key.import", "ImportKey", "error", undefined, /^already_exists/);
    has("key.import", "ImportKey", "error", "main", /^invalid_argument.*big\.json/);
    has("key.delete_all", "DeleteAllKeys", "ok");

    const secrets = [
      d.token,
      BIP39_PASSPHRASE,
      EXPORT_PASSWORD,
      WRONG_PASSWORD,
      ...usedMnemonics.map((m) => m.join(" ")),
      ...usedMnemonics.map((m) => JSON.stringify(m)),
      ...encodings(vectorSeed),
      ...encodings(passSeed),
    ];
    for (const secret of secrets) {
      assert.equal(out.includes(secret), false, "secret in daemon output");
      assert.equal(fileText.includes(secret), false, "secret in audit file");
    }
    // Words of a mnemonic, in order, in any spacing.
    assert.doesNotMatch(out, /abandon\W+abandon\W+abandon/);
    assert.doesNotMatch(fileText, /abandon\W+abandon\W+abandon/);
  });
});

function publicKeyPrincipal(seed: Uint8Array): string {
  const kp = nacl.sign.keyPair.fromSeed(seed);
  return base58btc.encode(Uint8Array.from([0xed, 0x01, ...kp.publicKey]));
}

describe("keys across restarts", () => {
  test("keys survive a restart, and no seed is on disk without a passphrase either", async () => {
    const dataDir = join(tempDir(), "data");
    const d1 = await startDaemon({ dataDir });
    const c1 = clientFor(Daemon, "grpc", d1, d1.token);
    await c1.registerKey({ mnemonic: VECTOR, name: "main" });
    assert.equal((await d1.stop()).code, 0);
    // No KEK source configured: the KEK is a generated file outside the data dir, and the seed
    // is sealed all the same (test/e2e/kek.test.ts checks every source).
    assert.equal(includesBytes(readDbFiles(dataDir), keyFromMnemonic(VECTOR, "")), false);

    const d2 = await startDaemon({ dataDir });
    try {
      const c2 = clientFor(Daemon, "connect", d2, d2.token);
      const list = await c2.listKeys({});
      assert.deepEqual(
        list.keys.map((k) => [k.name, k.publicKey]),
        [["main", VECTOR_ID]],
      );
      const data = new Uint8Array([4, 2]);
      const { signature } = await c2.signData({ signingKeyName: "main", data });
      assert.ok(nacl.sign.detached.verify(data, signature, publicKeyOf(VECTOR_ID)));
    } finally {
      await d2.stop();
      removeDir(join(dataDir, ".."));
    }
  });

  test("SEED_DAEMON_KEYSTORE_PASSPHRASE encrypts seeds at rest; a wrong one exits 2 and changes nothing", async () => {
    const dataDir = join(tempDir(), "data");
    const passphrase = `keystore-pass-${Math.random().toString(36).slice(2)}`;
    const seed = keyFromMnemonic(VECTOR, "");
    const env = { SEED_DAEMON_KEYSTORE_PASSPHRASE: passphrase };
    const d1 = await startDaemon({ dataDir, env, args: ["--log-level", "trace"] });
    await clientFor(Daemon, "connect", d1, d1.token).registerKey({
      mnemonic: VECTOR,
      name: "main",
    });
    // Look while it runs (the WAL is live) and after it stopped.
    assert.equal(includesBytes(readDbFiles(dataDir), seed), false, "seed in seed.db or -wal");
    assert.equal((await d1.stop()).code, 0);
    assert.equal(includesBytes(readDbFiles(dataDir), seed), false, "seed in seed.db or -wal");
    assert.equal(statSync(join(dataDir, "seed.db")).mode & 0o777, 0o600);

    const d2 = await startDaemon({ dataDir, env });
    try {
      const c2 = clientFor(Daemon, "connect", d2, d2.token);
      assert.deepEqual(
        (await c2.listKeys({})).keys.map((k) => k.publicKey),
        [VECTOR_ID],
      );
      const data = new Uint8Array([5]);
      const { signature } = await c2.signData({ signingKeyName: "main", data });
      assert.ok(nacl.sign.detached.verify(data, signature, publicKeyOf(VECTOR_ID)));
    } finally {
      assert.equal((await d2.stop()).code, 0);
    }

    const snapshot = readFileSync(join(dataDir, "seed.db"));
    const wrong = runExpectingExit(dataDir, {
      SEED_DAEMON_KEYSTORE_PASSPHRASE: `${passphrase}x`,
    });
    assert.equal(wrong.code, 2, wrong.out);
    assert.match(wrong.out, /wrong keystore passphrase/);
    assert.equal(wrong.out.trim().split("\n").length, 1, `one line: ${wrong.out}`);
    assert.equal(wrong.out.includes(passphrase), false);
    assert.ok(readFileSync(join(dataDir, "seed.db")).equals(snapshot), "seed.db unchanged");

    const missing = runExpectingExit(dataDir, {});
    assert.equal(missing.code, 2, missing.out);
    assert.match(missing.out, /SEED_DAEMON_KEYSTORE_PASSPHRASE/);
    assert.ok(readFileSync(join(dataDir, "seed.db")).equals(snapshot), "seed.db unchanged");

    for (const o of [d1.output(), d2.output()]) {
      assert.equal(o.includes(passphrase), false, "keystore passphrase in daemon output");
      for (const enc of encodings(seed)) assert.equal(o.includes(enc), false);
    }
    removeDir(join(dataDir, ".."));
  });
});

describe("--public-only", () => {
  test("only ListKeys and GenMnemonic work; every refusal is audited", async () => {
    const dir = tempDir();
    const audit = join(dir, "audit.jsonl");
    const dataDir = join(dir, "data");
    // A key registered before the daemon went public-only is listed but not usable.
    const d0 = await startDaemon({ dataDir });
    await clientFor(Daemon, "connect", d0, d0.token).registerKey({
      mnemonic: VECTOR,
      name: "main",
    });
    await d0.stop();

    const d = await startDaemon({ dataDir, args: ["--public-only", "--audit-log", audit] });
    try {
      const c = clientFor(Daemon, "connect", d, d.token);
      assert.equal((await c.getInfo({})).publicOnly, true);
      assert.deepEqual(
        (await c.listKeys({})).keys.map((k) => k.name),
        ["main"],
      );
      assert.equal((await c.genMnemonic({})).mnemonic.length, 12);
      const path = join(dir, "k.json");
      const calls: [string, () => Promise<unknown>][] = [
        ["RegisterKey", () => c.registerKey({ mnemonic: VECTOR, name: "other" })],
        ["ImportKey", () => c.importKey({ filePath: path })],
        ["ExportKey", () => c.exportKey({ name: "main", filePath: path })],
        ["UpdateKey", () => c.updateKey({ currentName: "main", newName: "x" })],
        ["DeleteKey", () => c.deleteKey({ name: "main" })],
        ["DeleteAllKeys", () => c.deleteAllKeys({})],
        ["SignData", () => c.signData({ signingKeyName: "main", data: new Uint8Array([1]) })],
      ];
      for (const [method, call] of calls) {
        const err = await call().then(
          () => undefined,
          (e) => ConnectError.from(e),
        );
        assert.equal(err?.code, Code.FailedPrecondition, method);
        assert.match(err?.rawMessage ?? "", /public-only/);
      }
      assert.equal(existsSync(path), false);
      assert.deepEqual(
        (await c.listKeys({})).keys.map((k) => k.name),
        ["main"],
      );
      const records = auditLines(readFileSync(audit, "utf8"));
      assert.deepEqual(records.map((r) => r.method).sort(), calls.map(([m]) => m).sort());
      for (const r of records) {
        assert.equal(r.outcome, "denied");
        assert.match(r.reason ?? "", /^failed_precondition/);
      }
    } finally {
      await d.stop();
      removeDir(dir);
    }
  });
});
