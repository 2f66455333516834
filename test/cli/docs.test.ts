import assert from "node:assert/strict";
import { dirname } from "node:path";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  type Document,
  type DocumentChange,
  DocumentChangeSchema,
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor } from "../helpers/clients.js";
import { removeDir, runCli, startDaemon, type TestDaemon } from "../helpers/daemon.js";

const ALICE_WORDS = [...Array<string>(11).fill("abandon"), "about"];
const BOB_WORDS =
  "legal winner thank year wave sausage worth useful legal winner thank yellow".split(" ");
const CAROL_WORDS =
  "letter advice cage absurd amount doctor acoustic avoid letter advice cage above".split(" ");
const principalOf = (words: string[]) =>
  principalToString(publicKeyFromSeed(keyFromMnemonic(words)));
const ALICE = principalOf(ALICE_WORDS);
const BOB = principalOf(BOB_WORDS);
const CAROL = principalOf(CAROL_WORDS);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const setTitle = (value: string): DocumentChange =>
  create(DocumentChangeSchema, { op: { case: "setMetadata", value: { key: "title", value } } });
const block = (id: string, text: string, parent = "", leftSibling = ""): DocumentChange[] => [
  create(DocumentChangeSchema, {
    op: { case: "moveBlock", value: { blockId: id, parent, leftSibling } },
  }),
  create(DocumentChangeSchema, {
    op: { case: "replaceBlock", value: { id, type: "Paragraph", text } },
  }),
];

/** A failed command: the given exit code, nothing on stdout, one line on stderr. */
function assertOneLineFailure(r: CliResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, pattern);
}

/** The data rows of a table (header dropped), split on runs of two or more spaces. */
function rows(stdout: string): string[][] {
  return stdout
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((l) => l.split(/ {2,}/));
}

describe("seed-daemon docs and caps (CLI against a running daemon)", () => {
  let d: TestDaemon;
  let v1: Document;
  let v2: Document;
  let plans: Document;
  let bobHome: Document;
  const cli = (...args: string[]) => runCli([...args, "--data-dir", d.dataDir]);
  const acl = () => clientFor(AccessControl, "connect", d, d.token);

  before(async () => {
    d = await startDaemon();
    const daemon = clientFor(Daemon, "connect", d, d.token);
    await daemon.registerKey({ name: "alice", mnemonic: ALICE_WORDS });
    await daemon.registerKey({ name: "bob", mnemonic: BOB_WORDS });
    const docs = clientFor(Documents, "connect", d, d.token);
    v1 = await docs.createDocumentChange({
      account: ALICE,
      path: "/notes",
      signingKeyName: "alice",
      changes: [setTitle("Notes"), ...block("b1", "first"), ...block("b2", "nested", "b1")],
    });
    v2 = await docs.createDocumentChange({
      account: ALICE,
      path: "/notes",
      signingKeyName: "alice",
      baseVersion: v1.version,
      changes: [setTitle("Renamed notes"), ...block("b3", "second\nline two", "", "b1")],
    });
    plans = await docs.createDocumentChange({
      account: ALICE,
      path: "/private/plans",
      signingKeyName: "alice",
      visibility: ResourceVisibility.PRIVATE,
      changes: [setTitle("Plans"), ...block("p1", "secret plan")],
    });
    bobHome = await docs.createDocumentChange({
      account: BOB,
      path: "",
      signingKeyName: "bob",
      changes: [setTitle("Bob's home")],
    });
  });
  after(async () => {
    await d?.stop();
    if (d) removeDir(dirname(d.dataDir));
  });

  test("docs list <account>: every document of the space, private ones included", async () => {
    const r = await cli("docs", "list", ALICE);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ACCOUNT\s+PATH\s+TITLE\s+VISIBILITY\s+UPDATED\s+VERSION\n/);
    const byPath = new Map(rows(r.stdout).map((row) => [row[1], row]));
    assert.equal(byPath.size, 2);
    assert.deepEqual(byPath.get("/notes")?.slice(0, 4), [
      ALICE,
      "/notes",
      "Renamed notes",
      "public",
    ]);
    assert.match(byPath.get("/notes")?.[4] ?? "", RFC3339);
    assert.equal(byPath.get("/notes")?.[5], v2.version);
    assert.deepEqual(byPath.get("/private/plans")?.slice(2, 4), ["Plans", "private"]);
    assert.equal(byPath.get("/private/plans")?.[5], plans.version);

    const json = await cli("docs", "list", ALICE, "--json");
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as {
      documents: { path: string; version: string; visibility: string; metadata: object }[];
    };
    assert.deepEqual(parsed.documents.map((x) => x.path).sort(), ["/notes", "/private/plans"]);
    const notes = parsed.documents.find((x) => x.path === "/notes");
    assert.equal(notes?.version, v2.version);
    assert.equal(notes?.visibility, "RESOURCE_VISIBILITY_PUBLIC");
    assert.deepEqual(notes?.metadata, { title: "Renamed notes" });
  });

  test("docs list with no account: the documents of every local key, home shown as /", async () => {
    const r = await cli("docs", "list");
    assert.equal(r.code, 0, r.stderr);
    const listed = rows(r.stdout).map((row) => `${row[0]} ${row[1]} ${row[2]}`);
    assert.deepEqual(
      listed.sort(),
      [
        `${ALICE} /notes Renamed notes`,
        `${ALICE} /private/plans Plans`,
        `${BOB} / Bob's home`,
      ].sort(),
    );
    // One document per page: the CLI follows next_page_token to the end.
    const paged = await runCli([
      "docs",
      "list",
      "--json",
      "--page-size",
      "1",
      "--data-dir",
      d.dataDir,
    ]);
    assert.equal(paged.code, 0, paged.stderr);
    const docs = (JSON.parse(paged.stdout) as { documents: { account: string; path: string }[] })
      .documents;
    assert.equal(docs.length, 3);
    assert.ok(
      docs.some((x) => x.account === BOB && x.path === ""),
      'home is path "" in JSON',
    );
    assert.equal((await cli("docs", "list", CAROL)).stdout, "no documents\n");
  });

  test("docs get: metadata and the block tree as text, nested blocks indented", async () => {
    const r = await cli("docs", "get", ALICE, "/notes");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^account: +z6Mk/m);
    assert.match(r.stdout, /^path: +\/notes$/m);
    assert.match(r.stdout, /^visibility: +public$/m);
    assert.match(r.stdout, new RegExp(`^version: +${v2.version}$`, "m"));
    assert.match(r.stdout, /^ {2}title: Renamed notes$/m);
    const lines = r.stdout.split("\n");
    const indentOf = (text: string) => {
      const line = lines.find((l) => l.includes(text));
      assert.ok(line !== undefined, `${text} is shown`);
      assert.match(line, /Paragraph/);
      return line.length - line.trimStart().length;
    };
    const first = indentOf("first");
    assert.ok(indentOf("nested") > first, "a child is indented under its parent");
    assert.equal(indentOf("second"), first);
    assert.ok(
      lines.indexOf(lines.find((l) => l.includes("nested")) ?? "") <
        lines.indexOf(lines.find((l) => l.includes("second")) ?? ""),
      "children come before the next sibling",
    );
    assert.ok(
      lines.some((l) => l.trim() === "line two"),
      "a multi-line text keeps its lines",
    );

    // Home: no path, or "/".
    for (const args of [
      ["docs", "get", BOB],
      ["docs", "get", BOB, "/"],
    ]) {
      const home = await cli(...args);
      assert.equal(home.code, 0, home.stderr);
      assert.match(home.stdout, /^path: +\/$/m);
      assert.match(home.stdout, /title: Bob's home/);
      assert.match(home.stdout, /^content: +\(empty\)$/m);
    }
    assert.match((await cli("docs", "get", BOB, "--json")).stdout, new RegExp(bobHome.version));
  });

  test("docs get --json is the Document message; --version shows an older version", async () => {
    const r = await cli("docs", "get", ALICE, "/notes", "--json");
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      account: string;
      path: string;
      version: string;
      metadata: Record<string, string>;
      content: { block: { id: string; text: string }; children: { block: { text: string } }[] }[];
    };
    assert.equal(doc.account, ALICE);
    assert.equal(doc.version, v2.version);
    assert.deepEqual(
      doc.content.map((n) => n.block.id),
      ["b1", "b3"],
    );
    assert.equal(doc.content[0]?.children[0]?.block.text, "nested");

    const old = await cli("docs", "get", ALICE, "notes", "--version", v1.version);
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stdout, /^ {2}title: Notes$/m);
    assert.match(old.stdout, new RegExp(`^version: +${v1.version}$`, "m"));
    assert.doesNotMatch(old.stdout, /second/);
    const oldJson = JSON.parse(
      (await cli("docs", "get", ALICE, "/notes", "--version", v1.version, "--json")).stdout,
    ) as { version: string; metadata: Record<string, string> };
    assert.deepEqual([oldJson.version, oldJson.metadata.title], [v1.version, "Notes"]);
  });

  test("docs get of a missing document, version or bad path: not_found / invalid_argument", async () => {
    assertOneLineFailure(
      await cli("docs", "get", ALICE, "/nope"),
      1,
      /^seed-daemon: not_found: document not found$/m,
    );
    assertOneLineFailure(
      await cli("docs", "history", ALICE, "/nope"),
      1,
      /^seed-daemon: not_found: document not found$/m,
    );
    assertOneLineFailure(
      await cli("docs", "get", ALICE, "/notes", "--version", plans.version),
      1,
      /^seed-daemon: not_found: /,
    );
    assertOneLineFailure(
      await cli("docs", "get", ALICE, "/a/"),
      1,
      /^seed-daemon: invalid_argument: invalid document path$/m,
    );
    assertOneLineFailure(await cli("docs", "list", "z6Mk-nope"), 1, /invalid_argument: account/);
  });

  test("docs history: every change, newest first, with author and deps count", async () => {
    const r = await cli("docs", "history", ALICE, "/notes");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ID\s+AUTHOR\s+TIME\s+DEPS\n/);
    // A new document starts with a genesis change (no deps); each write adds one on top.
    const changes = rows(r.stdout);
    assert.deepEqual(
      changes.map((c) => [c[1], c[3]]),
      [
        [ALICE, "1"],
        [ALICE, "1"],
        [ALICE, "0"],
      ],
    );
    assert.deepEqual(
      changes.slice(0, 2).map((c) => c[0]),
      [v2.version, v1.version],
      "newest first: the current head, then the one before",
    );
    assert.ok(changes.every((c) => RFC3339.test(c[2] ?? "")));
    const times = changes.map((c) => Date.parse(c[2] ?? ""));
    assert.ok(times.every((t, i) => i === 0 || t <= (times[i - 1] ?? 0)));

    const paged = await cli("docs", "history", ALICE, "/notes", "--json", "--page-size", "1");
    assert.equal(paged.code, 0, paged.stderr);
    const parsed = JSON.parse(paged.stdout) as { changes: { id: string; deps: string[] }[] };
    assert.deepEqual(
      parsed.changes.map((c) => c.id),
      changes.map((c) => c[0]),
    );
    assert.deepEqual(parsed.changes[0]?.deps, [v1.version]);
    assert.deepEqual(parsed.changes[1]?.deps, [changes[2]?.[0]]);
    // The home document's genesis is Seed's fixed one, then Bob's change.
    assert.equal(rows((await cli("docs", "history", BOB, "/")).stdout).length, 2);
  });

  test("caps create: issued in the key's account, shown with its id and fields", async () => {
    const r = await cli(
      "caps",
      "create",
      "--key",
      "alice",
      "--delegate",
      CAROL,
      "--role",
      "reader",
      "--path",
      "/private",
      "--label",
      "Carol reads",
      "--expires",
      "30d",
    );
    assert.equal(r.code, 0, r.stderr);
    const id = /^created: +(\S+)$/m.exec(r.stdout)?.[1] ?? "";
    assert.match(r.stdout, new RegExp(`^account: +${ALICE}$`, "m"));
    assert.match(r.stdout, new RegExp(`^delegate: +${CAROL}$`, "m"));
    assert.match(r.stdout, /^role: +reader$/m);
    assert.match(r.stdout, /^path: +\/private$/m);
    assert.match(r.stdout, /^exact: +no$/m);
    assert.match(r.stdout, /^label: +Carol reads$/m);
    const cap = await acl().getCapability({ id });
    assert.equal(cap.account, ALICE);
    assert.equal(cap.role, Role.READER);
    const days = (Number(cap.expireTime?.seconds) * 1000 - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `expires in 30 days, not ${days}`);

    const json = await cli(
      "caps",
      "create",
      "--json",
      "--key",
      "bob",
      "--delegate",
      CAROL,
      "--role",
      "WRITER",
      "--path",
      "/shared",
      "--exact",
      "--expires",
      "2999-01-01T00:00:00+01:00",
    );
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(parsed.account, BOB);
    assert.equal(parsed.role, "WRITER");
    assert.equal(parsed.isExact, true);
    assert.equal(parsed.expireTime, "2998-12-31T23:00:00Z");
  });

  test("caps list: every local account, one account, a path, --exact and --delegate", async () => {
    const all = await cli("caps", "list");
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^ID\s+ROLE\s+DELEGATE\s+PATH\s+EXACT\s+EXPIRES\s+LABEL\n/);
    const listed = rows(all.stdout);
    assert.deepEqual(listed.map((c) => [c[1], c[2], c[3], c[4], c[6]]).sort(), [
      ["reader", CAROL, "/private", "no", "Carol reads"],
      ["writer", CAROL, "/shared", "yes", undefined],
    ]);
    assert.ok(listed.every((c) => RFC3339.test(c[5] ?? "")));

    const ofAlice = rows((await cli("caps", "list", ALICE)).stdout);
    assert.deepEqual(
      ofAlice.map((c) => c[3]),
      ["/private"],
    );
    // A capability on /private applies to /private/plans, unless only exact ones are asked for.
    assert.equal(
      rows((await cli("caps", "list", ALICE, "--path", "/private/plans")).stdout).length,
      1,
    );
    assert.equal(
      (await cli("caps", "list", ALICE, "--path", "/private/plans", "--exact")).stdout,
      "no capabilities\n",
    );
    assert.equal(
      rows((await cli("caps", "list", ALICE, "--path", "/private", "--exact")).stdout).length,
      1,
    );
    assert.equal(
      (await cli("caps", "list", ALICE, "--path", "/other")).stdout,
      "no capabilities\n",
    );

    const forCarol = await cli("caps", "list", "--delegate", CAROL, "--json");
    assert.equal(forCarol.code, 0, forCarol.stderr);
    const caps = (JSON.parse(forCarol.stdout) as { capabilities: { account: string }[] })
      .capabilities;
    assert.deepEqual(caps.map((c) => c.account).sort(), [ALICE, BOB].sort());
    assert.equal(rows((await cli("caps", "list", BOB, "--delegate", CAROL)).stdout).length, 1);
    assert.equal((await cli("caps", "list", "--delegate", ALICE)).stdout, "no capabilities\n");
    const paged = await cli("caps", "list", "--delegate", CAROL, "--page-size", "1", "--json");
    assert.equal((JSON.parse(paged.stdout) as { capabilities: unknown[] }).capabilities.length, 2);
  });

  test("bad local input is refused before any RPC; daemon refusals keep their code", async () => {
    const before = await acl().listCapabilities({ account: ALICE, path: "*" });
    const base = ["caps", "create", "--key", "alice", "--delegate", CAROL];
    const refused: [string[], RegExp][] = [
      [["--role", "owner"], /--role.*'owner' is invalid.*reader, writer or agent/],
      [["--role", "reader", "--expires", "30x"], /--expires.*RFC 3339.*duration/],
      [["--role", "reader", "--expires", "0d"], /longer than zero/],
      [["--role", "reader", "--expires", "2000-01-01T00:00:00Z"], /in the past/],
      [["--role", "reader", "--expires", "2999-02-30T00:00:00Z"], /RFC 3339/],
      [["--role", "reader", "--expires", "2999-01-01T00:00:00"], /with a zone/],
      [[], /required option '--role/],
    ];
    for (const [args, pattern] of refused) {
      assertOneLineFailure(await cli(...base, ...args), 2, pattern);
    }
    assertOneLineFailure(
      await cli("caps", "list", "--delegate", CAROL, "--path", "/x"),
      2,
      /cannot be used with/,
    );
    assertOneLineFailure(await cli("caps", "list", "--exact"), 2, /--exact needs a --path/);
    assertOneLineFailure(
      await cli("caps", "create", "--key", "alice", "--delegate", "nope", "--role", "reader"),
      1,
      /^seed-daemon: invalid_argument: delegate must be an Ed25519 principal/,
    );
    assertOneLineFailure(
      await cli("caps", "create", "--key", "zed", "--delegate", CAROL, "--role", "reader"),
      1,
      /^seed-daemon: not_found: /,
    );
    const after = await acl().listCapabilities({ account: ALICE, path: "*" });
    assert.deepEqual(
      after.capabilities.map((c) => c.id),
      before.capabilities.map((c) => c.id),
      "nothing was issued",
    );
  });
});
