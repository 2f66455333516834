import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { base58btc } from "multiformats/bases/base58";
import nacl from "tweetnacl";
import { keyFromMnemonic } from "../../src/identity/keys.js";
import {
  randomToken,
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

// Seed's own test vectors: frontend/apps/cli/src/utils/key-derivation.test.ts (abandon),
// test-fixtures/account.json and frontend/.../blobs home-genesis test (legal winner: account,
// raw private key and public key).
const ABANDON =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const ABANDON_ID = "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f";
const LEGAL = "legal winner thank year wave sausage worth useful legal winner thank yellow";
const LEGAL_ID = "z6MkhMSRCyK9KkAzTmzTKSfuNMaEuYZUJacWmbqiHYkCQgSW";
const LEGAL_SEED = Buffer.from(
  "563463435d9a4595f604d677ebca9d9f2dbfd067e1ad39371681a18cf9875a63",
  "hex",
);
const LEGAL_PUBLIC_KEY = Buffer.from(
  "2b154dea9ea72d6c636ec820845c615f99469bb15d2091048a79c4416c5ffc2b",
  "hex",
);

const MAIN = { service: "seed-daemon-main", username: "parentCollection" };
const DEV = { service: "seed-daemon-dev", username: "parentCollection" };
const label = (service: string) => `Password for 'parentCollection' on '${service}'`;

/** A libp2p Ed25519 private key protobuf, base64 as Go's encoding/json writes a []byte. */
function libp2pKey(seed: Uint8Array, publicKey?: Uint8Array): string {
  const pub = publicKey ?? nacl.sign.keyPair.fromSeed(seed).publicKey;
  return Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x40]), seed, pub]).toString("base64");
}

type CliResult = Awaited<ReturnType<typeof runCli>>;

interface Report {
  service: string;
  account: string;
  imported: { name: string; publicKey: string; accountId: string }[];
  skipped: { name: string; accountId: string; reason: string }[];
  failed: { name: string; error: string }[];
}

/** The CLI with exactly `env` (plus PATH): nothing of this process's session leaks in. */
function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCli(args, { exactEnv: env });
}

function assertOneLineFailure(r: CliResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, r.stderr);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(r.stderr.trimEnd(), pattern);
}

describe("keys import-seed-keyring without a keychain", () => {
  const env = { SEED_DAEMON_AUTH_TOKEN: randomToken(), HOME: "/nonexistent" };
  const args = ["keys", "import-seed-keyring", "--http-addr", "127.0.0.1:9"];

  test("SEED_DAEMON_KEYCHAIN=off: one line naming the item and the reason, exit 1", async () => {
    const r = await cli(args, { ...env, SEED_DAEMON_KEYCHAIN: "off" });
    assertOneLineFailure(
      r,
      /cannot read Seed's keys \(service seed-daemon-main, account parentCollection\): disabled by SEED_DAEMON_KEYCHAIN=off/,
    );
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
  });

  test("no D-Bus session bus: one line saying so", {
    skip: process.platform !== "linux",
  }, async () => {
    const r = await cli([...args, "--dev"], env);
    assertOneLineFailure(r, /seed-daemon-dev.*DBUS_SESSION_BUS_ADDRESS is not set/);
  });
});

describe("keys import-seed-keyring against a real Secret Service", {
  skip: secretServiceSkip(),
}, () => {
  let ss: SecretService;
  let d: TestDaemon;
  let dir: string;
  /** Every CLI transcript, checked for secrets at the end. */
  const transcripts: string[] = [];
  const secrets: string[] = [];

  function run(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
    return cli([...args, "--data-dir", d.dataDir], { ...ss.env, ...extra }).then((r) => {
      transcripts.push(`${args.join(" ")}\n${r.stdout}${r.stderr}`);
      return r;
    });
  }

  function importJson(dev = false): Promise<{ r: CliResult; report: Report }> {
    const args = ["keys", "import-seed-keyring", "--json", ...(dev ? ["--dev"] : [])];
    return run(args).then((r) => {
      assert.notEqual(r.stdout, "", r.stderr);
      return { r, report: JSON.parse(r.stdout) as Report };
    });
  }

  async function listed(): Promise<{ name: string; accountId: string }[]> {
    const r = await run(["keys", "list", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { keys: { name: string; accountId: string }[] }).keys;
  }

  function leftovers(): string[] {
    return readdirSync(d.dataDir).filter((n) => n.startsWith(".seed-import-"));
  }

  before(async () => {
    dir = tempDir();
    ss = await startSecretService();
    d = await startDaemon({ dataDir: join(dir, "data") });
  });
  after(async () => {
    await d?.stop("SIGKILL");
    await ss?.stop();
    removeDir(dir);
  });

  test("no item: exit 1 with one line naming the item (and --dev)", async () => {
    const r = await run(["keys", "import-seed-keyring"]);
    assertOneLineFailure(
      r,
      /no Seed keys here: the OS keychain has no item for service seed-daemon-main, account parentCollection \(Seed's development keys: --dev\)/,
    );
    assert.equal(r.stdout, "");
  });

  test("imports the keys of Seed's item with their Seed account ids, and leaves it as it was", async () => {
    const abandonSeed = keyFromMnemonic(ABANDON.split(" "));
    // The legal-winner item value is built from Seed's raw key bytes; deriving the mnemonic
    // gives the same seed, so these are the keys of both mnemonics.
    assert.deepEqual(Buffer.from(keyFromMnemonic(LEGAL.split(" "))), LEGAL_SEED);
    const item = JSON.stringify({
      abandon: libp2pKey(abandonSeed),
      "legal-winner": libp2pKey(LEGAL_SEED, LEGAL_PUBLIC_KEY),
    });
    secrets.push(item, Buffer.from(abandonSeed).toString("hex"), LEGAL_SEED.toString("hex"));
    secrets.push(Buffer.from(abandonSeed).toString("base64"), LEGAL_SEED.toString("base64"));
    await ss.store(label(MAIN.service), MAIN, item);
    const before = await ss.lookup(MAIN);
    assert.equal(before, item);

    const { r, report } = await importJson();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.deepEqual(report, {
      service: "seed-daemon-main",
      account: "parentCollection",
      imported: [
        { name: "abandon", publicKey: ABANDON_ID, accountId: ABANDON_ID },
        { name: "legal-winner", publicKey: LEGAL_ID, accountId: LEGAL_ID },
      ],
      skipped: [],
      failed: [],
    });
    const keys = await listed();
    assert.deepEqual(keys.map((k) => [k.name, k.accountId]).sort(), [
      ["abandon", ABANDON_ID],
      ["legal-winner", LEGAL_ID],
    ]);

    // The daemon now signs with Seed's key: the signature verifies under Seed's public key.
    const data = randomBytes(32);
    const sig = await run(["keys", "sign", "legal-winner", "--data-hex", data.toString("hex")]);
    assert.equal(sig.code, 0, sig.stderr);
    assert.ok(
      nacl.sign.detached.verify(data, Buffer.from(sig.stdout.trim(), "hex"), LEGAL_PUBLIC_KEY),
    );

    assert.equal(await ss.lookup(MAIN), before, "Seed's item is unchanged");
    assert.equal(await ss.lookup(DEV), null, "no dev item was created");
    assert.deepEqual(leftovers(), [], "the transfer files are gone");
  });

  test("a second run skips every name, one line each, and changes nothing", async () => {
    const before = await ss.lookup(MAIN);
    const r = await run(["keys", "import-seed-keyring"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.deepEqual(r.stdout.trimEnd().split("\n"), [
      `skipped:  "abandon" (${ABANDON_ID}): already in the daemon under this name`,
      `skipped:  "legal-winner" (${LEGAL_ID}): already in the daemon under this name`,
      "0 imported, 2 skipped, 0 failed from Seed's keychain item (service seed-daemon-main, " +
        "account parentCollection), which was left unchanged",
    ]);
    assert.equal((await listed()).length, 2);
    assert.equal(await ss.lookup(MAIN), before);
  });

  test("--dev reads seed-daemon-dev (Seed CLI's go-keyring-base64 form); bad entries are reported without their secret", async () => {
    const clash = await run(["keys", "new", "--name", "clash", "--json"]);
    assert.equal(clash.code, 0, clash.stderr);
    const clashId = (JSON.parse(clash.stdout) as { accountId: string }).accountId;

    const devSeed = randomBytes(32);
    const badSeed = randomBytes(32);
    const clashSeed = randomBytes(32);
    const abandonSeed = keyFromMnemonic(ABANDON.split(" "));
    const wrongPublicKey = nacl.sign.keyPair.fromSeed(randomBytes(32)).publicKey;
    const entries = {
      "dev-key": libp2pKey(devSeed),
      "bad-public-key": libp2pKey(badSeed, wrongPublicKey),
      short: randomBytes(10).toString("base64"),
      "not-ed25519": Buffer.concat([
        Buffer.from([0x08, 0x02, 0x12, 0x40]),
        randomBytes(64),
      ]).toString("base64"),
      "not-base64": "@@@@",
      number: 42,
      abandon: libp2pKey(abandonSeed),
      "abandon-again": libp2pKey(abandonSeed),
      clash: libp2pKey(clashSeed),
    };
    const json = JSON.stringify(entries);
    const item = `go-keyring-base64:${Buffer.from(json).toString("base64")}`;
    secrets.push(
      json,
      item,
      devSeed.toString("hex"),
      badSeed.toString("hex"),
      clashSeed.toString("hex"),
    );
    for (const v of Object.values(entries))
      if (typeof v === "string" && v.length > 8) secrets.push(v);
    await ss.store(label(DEV.service), DEV, item);
    const mainBefore = await ss.lookup(MAIN);

    const { r, report } = await importJson(true);
    assert.equal(r.code, 1);
    assertOneLineFailure(
      r,
      /^seed-daemon: 5 of 9 keys in Seed's keychain item could not be imported$/,
    );
    assert.equal(report.service, "seed-daemon-dev");
    const devId = report.imported[0]?.accountId ?? "";
    assert.deepEqual(
      report.imported.map((k) => k.name),
      ["dev-key"],
    );
    assert.deepEqual(
      base58btc.decode(devId).subarray(2),
      nacl.sign.keyPair.fromSeed(devSeed).publicKey,
    );
    assert.deepEqual(
      report.skipped.map((s) => [s.name, s.reason]),
      [
        ["abandon", "already in the daemon under this name"],
        ["abandon-again", 'already in the daemon as "abandon"'],
        [
          "clash",
          `the daemon has a different key (${clashId}) under this name; rename that one ` +
            "(seed-daemon keys rename) and run this again to bring Seed's in",
        ],
      ],
    );
    assert.deepEqual(report.failed, [
      { name: "bad-public-key", error: "the stored public key does not match the private key" },
      {
        name: "short",
        error: "the value holds 10 bytes, not the 68 of a libp2p Ed25519 private key",
      },
      {
        name: "not-ed25519",
        error: "the value is not a libp2p Ed25519 private key (header is not 08 01 12 40)",
      },
      { name: "not-base64", error: "the value is not valid base64" },
      { name: "number", error: "the value is not a base64 string" },
    ]);
    const names = (await listed()).map((k) => k.name).sort();
    assert.deepEqual(names, ["abandon", "clash", "dev-key", "legal-winner"]);
    assert.equal(await ss.lookup(DEV), item, "Seed's dev item is unchanged");
    assert.equal(await ss.lookup(MAIN), mainBefore, "the main item is untouched");
    assert.deepEqual(leftovers(), []);
  });

  test("an item that is not Seed's format: one line, nothing echoed, nothing imported", async () => {
    const garbage = `{"oops": "${randomBytes(24).toString("base64")}"`;
    secrets.push(garbage);
    await ss.store(label(DEV.service), DEV, garbage);
    const r = await run(["keys", "import-seed-keyring", "--dev"]);
    assertOneLineFailure(r, /^seed-daemon: Seed's keyring item is malformed: it is not JSON$/);
    assert.equal(r.stdout, "");
    assert.equal(await ss.lookup(DEV), garbage);
  });

  test("no transcript holds a secret", () => {
    const all = transcripts.join("\n");
    for (const s of secrets) assert.ok(!all.includes(s), "a secret reached the CLI output");
  });
});
