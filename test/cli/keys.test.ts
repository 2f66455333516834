import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { base58btc } from "multiformats/bases/base58";
import nacl from "tweetnacl";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import {
  randomToken,
  removeDir,
  runCli,
  startDaemon,
  type TestDaemon,
  tempDir,
} from "../helpers/daemon.js";

const VECTOR = [...Array<string>(11).fill("abandon"), "about"];
const VECTOR_ID = "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f";
const BIP39_PASSPHRASE = `cli-bip39-${Math.random().toString(36).slice(2)}`;
const EXPORT_PASSWORD = `cli-export-${Math.random().toString(36).slice(2)}`;
const WRONG_PASSWORD = `cli-wrong-${Math.random().toString(36).slice(2)}`;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function publicKeyOf(principal: string): Uint8Array {
  const bytes = base58btc.decode(principal);
  assert.deepEqual([bytes[0], bytes[1]], [0xed, 0x01]);
  return bytes.subarray(2);
}

describe("seed-daemon keys (CLI against a running daemon)", () => {
  let d: TestDaemon;
  let dir: string;
  let work: string;
  /** Output of every CLI run except gen-mnemonic's, checked for secrets at the end. */
  const transcripts: string[] = [];
  const mnemonics: string[][] = [VECTOR];

  /** Runs the CLI in `work` (so relative paths resolve there) with stdin fed from `input`. */
  function cli(
    args: string[],
    opts: { input?: string | Uint8Array; env?: Record<string, string>; record?: boolean } = {},
  ): Promise<CliResult> {
    const full = args.includes("--http-addr") ? args : [...args, "--data-dir", d.dataDir];
    return runCli(full, { cwd: work, env: opts.env ?? {}, input: opts.input ?? "" }).then((r) => {
      if (opts.record !== false) transcripts.push(`${full.join(" ")}\n${r.stdout}${r.stderr}`);
      return r;
    });
  }

  /** Asserts a failed run: non-zero exit, exactly one line on stderr, nothing on stdout. */
  function assertOneLineFailure(r: CliResult, pattern: RegExp): void {
    assert.notEqual(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }

  before(async () => {
    dir = tempDir();
    work = join(dir, "work");
    mkdirSync(work, { mode: 0o700 });
    d = await startDaemon();
  });
  after(async () => {
    await d.stop("SIGKILL");
    removeDir(dir);
  });

  test("gen-mnemonic prints words (human and --json); a bad count fails with one line", async () => {
    const human = await cli(["keys", "gen-mnemonic"], { record: false });
    assert.equal(human.code, 0, human.stderr);
    const words = human.stdout.trim().split(" ");
    assert.equal(words.length, 12);
    mnemonics.push(words);
    const json = await cli(["keys", "gen-mnemonic", "--words", "24", "--json"], { record: false });
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { mnemonic: string[] };
    assert.equal(parsed.mnemonic.length, 24);
    mnemonics.push(parsed.mnemonic);
    assertOneLineFailure(await cli(["keys", "gen-mnemonic", "--words", "13"]), /word count/);
  });

  test("gen-mnemonic needs no daemon and checks --words first", async () => {
    const nowhere = join(dir, "no-daemon-here");
    const r = await runCli(["keys", "gen-mnemonic", "--data-dir", nowhere], { cwd: work });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split(" ").length, 12);
    const bad = await runCli(["keys", "gen-mnemonic", "--words", "abc", "--data-dir", nowhere], {
      cwd: work,
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /word count must be 12, 15, 18, 21 or 24/);
  });

  test("keys --help lists only commands that exist", async () => {
    const help = await runCli(["keys", "--help"], { cwd: work });
    assert.equal(help.code, 0);
    const listed = [...help.stdout.matchAll(/^ {2}([a-z-]+)\b/gm)].map((m) => m[1]);
    const described = /signing keys: ([\s\S]*?)\n\n/.exec(help.stdout)?.[1] ?? "";
    const names = described.split(/,\s*/).map((w) => w.trim());
    assert.ok(names.length >= 10, described);
    for (const word of names) assert.ok(listed.includes(word), `${word} is a real command`);
    assert.ok(listed.includes("new"));
    assert.ok(!listed.includes("create"), "no create command is offered");
  });

  test("keys new: generates, registers, and hands over the words once", async () => {
    const r = await cli(["keys", "new", "--name", "fresh", "--json"], { record: false });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { name: string; publicKey: string; mnemonic: string[] };
    assert.equal(out.name, "fresh");
    assert.equal(out.mnemonic.length, 12);
    // The words are the key: deriving them gives the registered public key.
    assert.equal(
      out.publicKey,
      principalToString(publicKeyFromSeed(keyFromMnemonic(out.mnemonic))),
    );
    mnemonics.push(out.mnemonic);
    assert.match((await cli(["keys", "list"])).stdout, /^fresh\s/m);
    assert.equal((await cli(["keys", "delete", "fresh"])).code, 0);
  });

  test("register reads the mnemonic (and a passphrase) from stdin, never from argv", async () => {
    const r = await cli(["keys", "register", "--name", "main"], { input: `${VECTOR.join(" ")}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /registered: main/);
    assert.match(r.stdout, new RegExp(`public key: ${VECTOR_ID}`));

    const words = mnemonics[1] as string[];
    const json = await cli(["keys", "register", "--name", "second", "--json"], {
      input: `${words.join(" ")}\r\n${BIP39_PASSPHRASE}\r\n`,
    });
    assert.equal(json.code, 0, json.stderr);
    const expected = principalToString(publicKeyFromSeed(keyFromMnemonic(words, BIP39_PASSPHRASE)));
    assert.deepEqual(JSON.parse(json.stdout), {
      name: "second",
      publicKey: expected,
      accountId: expected,
    });

    assertOneLineFailure(await cli(["keys", "register", "--name", "x"]), /no mnemonic/);
    assertOneLineFailure(
      await cli(["keys", "register", "--name", "main"], { input: `${VECTOR.join(" ")}\n` }),
      /^seed-daemon: already_exists: /,
    );
    // There is no way to pass a mnemonic, passphrase or password as an argument.
    const flag = await cli(["keys", "register", "--name", "y", "--mnemonic", "abandon"]);
    assert.equal(flag.code, 2);
    const help = await cli(["keys", "register", "--help"]);
    assert.doesNotMatch(help.stdout, /--mnemonic|--passphrase|--password\b/);
  });

  test("list: a table by default, --json for scripts", async () => {
    const human = await cli(["keys", "list"]);
    assert.equal(human.code, 0, human.stderr);
    const lines = human.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^NAME\s+PUBLIC KEY$/);
    assert.match(lines[1] ?? "", new RegExp(`^main\\s+${VECTOR_ID}$`));
    assert.match(lines[2] ?? "", /^second\s+z6Mk/);
    const json = await cli(["keys", "list", "--json"]);
    const parsed = JSON.parse(json.stdout) as { keys: { name: string; publicKey: string }[] };
    assert.deepEqual(
      parsed.keys.map((k) => [k.name, k.publicKey]),
      [
        ["main", VECTOR_ID],
        ["second", lines[2]?.split(/\s+/)[1]],
      ],
    );
  });

  test("sign: --data-hex, --data-file and stdin; signatures verify with tweetnacl", async () => {
    const pub = publicKeyOf(VECTOR_ID);
    const hex = await cli(["keys", "sign", "main", "--data-hex", "00ff10"]);
    assert.equal(hex.code, 0, hex.stderr);
    const sig1 = Buffer.from(hex.stdout.trim(), "hex");
    assert.ok(nacl.sign.detached.verify(Uint8Array.of(0, 0xff, 0x10), sig1, pub));

    const data = Buffer.from("file contents \u00e9\n", "utf8");
    writeFileSync(join(work, "msg.bin"), data);
    const file = await cli(["keys", "sign", "main", "--data-file", "msg.bin", "--json"]);
    assert.equal(file.code, 0, file.stderr);
    const parsed = JSON.parse(file.stdout) as { name: string; signature: string };
    assert.equal(parsed.name, "main");
    assert.ok(nacl.sign.detached.verify(data, Buffer.from(parsed.signature, "hex"), pub));

    const piped = await cli(["keys", "sign", "main"], { input: data });
    assert.equal(piped.stdout.trim(), parsed.signature);

    assertOneLineFailure(
      await cli(["keys", "sign", "nope", "--data-hex", "01"]),
      /^seed-daemon: not_found: /,
    );
    assertOneLineFailure(await cli(["keys", "sign", "main"]), /^seed-daemon: invalid_argument: /);
    assertOneLineFailure(
      await cli(["keys", "sign", "main", "--data-hex", "0g"]),
      /--data-hex: not hex/,
    );
  });

  test("rename", async () => {
    const r = await cli(["keys", "rename", "second", "other"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /renamed: second -> other/);
    const json = await cli(["keys", "list", "--json"]);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { keys: { name: string }[] }).keys.map((k) => k.name),
      ["main", "other"],
    );
    assertOneLineFailure(await cli(["keys", "rename", "second", "x"]), /^seed-daemon: not_found: /);
  });

  test("export / import with --password-stdin and relative paths", async () => {
    const exp = await cli(
      ["keys", "export", "main", "main.enc.json", "--password-stdin", "--json"],
      {
        input: `${EXPORT_PASSWORD}\n`,
      },
    );
    assert.equal(exp.code, 0, exp.stderr);
    const path = join(work, "main.enc.json");
    assert.deepEqual(JSON.parse(exp.stdout), {
      name: "main",
      filePath: path,
      publicKey: VECTOR_ID,
      encrypted: true,
    });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(JSON.parse(readFileSync(path, "utf8")).encryption);

    const plain = await cli(["keys", "export", "other", "other.json"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /encrypted:\s+false/);
    assert.match(plain.stderr, /not encrypted/);
    assert.equal(JSON.parse(readFileSync(join(work, "other.json"), "utf8")).encryption, undefined);
    assertOneLineFailure(
      await cli(["keys", "export", "other", "other.json"]),
      /^seed-daemon: already_exists: /,
    );

    assert.equal((await cli(["keys", "delete", "main"])).code, 0);
    assertOneLineFailure(
      await cli(["keys", "import", "main.enc.json", "--password-stdin"], {
        input: `${WRONG_PASSWORD}\n`,
      }),
      /^seed-daemon: permission_denied: /,
    );
    assertOneLineFailure(await cli(["keys", "import", "main.enc.json"]), /password required/);
    // No --name: the name the export wrote into the file comes back.
    assert.equal(JSON.parse(readFileSync(path, "utf8")).name, "main");
    const imp = await cli(["keys", "import", "main.enc.json", "--password-stdin"], {
      input: `${EXPORT_PASSWORD}\n`,
    });
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /imported: main/);
    assert.match(imp.stdout, new RegExp(VECTOR_ID));
  });

  test("delete and delete-all (which wants --yes when it cannot ask)", async () => {
    const del = await cli(["keys", "delete", "other", "--json"]);
    assert.deepEqual(JSON.parse(del.stdout), { name: "other", deleted: true });
    assertOneLineFailure(await cli(["keys", "delete", "other"]), /^seed-daemon: not_found: /);
    assertOneLineFailure(await cli(["keys", "delete-all"]), /--yes/);
    assert.match((await cli(["keys", "list"])).stdout, /^main\s/m);
    const all = await cli(["keys", "delete-all", "--yes"]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal((await cli(["keys", "list"])).stdout.trim(), "no keys");
    assert.deepEqual(JSON.parse((await cli(["keys", "list", "--json"])).stdout), { keys: [] });
  });

  test("a wrong token or a stopped daemon: one clear line and a non-zero exit", async () => {
    assertOneLineFailure(
      await cli(["keys", "list"], { env: { SEED_DAEMON_AUTH_TOKEN: randomToken() } }),
      /refused the token/,
    );
    const other = await startDaemon();
    const addr = other.httpAddr;
    await other.stop();
    removeDir(join(other.dataDir, ".."));
    assertOneLineFailure(
      await cli(["keys", "list", "--http-addr", addr], {
        env: { SEED_DAEMON_AUTH_TOKEN: d.token },
      }),
      /cannot reach the daemon.*is it running/,
    );
    assertOneLineFailure(
      await cli(["keys", "register", "--name", "z", "--http-addr", addr], {
        env: { SEED_DAEMON_AUTH_TOKEN: d.token },
        input: `${VECTOR.join(" ")}\n`,
      }),
      /cannot reach the daemon/,
    );
  });

  test("no mnemonic, passphrase, password or token in any output but gen-mnemonic's", () => {
    assert.ok(transcripts.length > 20);
    const all = transcripts.join("\n");
    for (const secret of [
      ...mnemonics.map((m) => m.join(" ")),
      BIP39_PASSPHRASE,
      EXPORT_PASSWORD,
      WRONG_PASSWORD,
      d.token,
    ]) {
      assert.equal(all.includes(secret), false, "secret in CLI output");
    }
    assert.doesNotMatch(all, /abandon\W+abandon/);
    assert.equal(existsSync(join(work, "main.enc.json")), true);
  });
});
