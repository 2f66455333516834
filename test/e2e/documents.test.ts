import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import nacl from "tweetnacl";
import { createCapability } from "../../src/blob/index.js";
import { Daemon } from "../../src/gen/com/seed/daemon/v1alpha/daemon_pb.js";
import { AccessControl, Role } from "../../src/gen/com/seed/documents/v3alpha/access_control_pb.js";
import {
  type DocumentChange,
  DocumentChangeSchema,
  Documents,
  ResourceVisibility,
} from "../../src/gen/com/seed/documents/v3alpha/documents_pb.js";
import { keyFromMnemonic, publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { clientFor, codeOf, type Protocol } from "../helpers/clients.js";
import { randomToken, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.js";
import { loginProof } from "../helpers/login-proof.js";

const SITE = "https://site.example";
const WEB = randomToken();
const ALICE_WORDS =
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about".split(
    " ",
  );
const BOB_WORDS =
  "legal winner thank year wave sausage worth useful legal winner thank yellow".split(" ");
const CAROL_WORDS =
  "letter advice cage absurd amount doctor acoustic avoid letter advice cage above".split(" ");

const key = (words: string[]) => {
  const seed = keyFromMnemonic(words);
  return { seed, principal: principalToString(publicKeyFromSeed(seed)) };
};
const ALICE = key(ALICE_WORDS);
const BOB = key(BOB_WORDS);
const CAROL = key(CAROL_WORDS);

const title = (t: string): DocumentChange =>
  create(DocumentChangeSchema, { op: { case: "setMetadata", value: { key: "title", value: t } } });
const paragraph = (id: string, text: string, leftSibling = ""): DocumentChange[] => [
  create(DocumentChangeSchema, {
    op: { case: "moveBlock", value: { blockId: id, parent: "", leftSibling } },
  }),
  create(DocumentChangeSchema, {
    op: { case: "replaceBlock", value: { id, type: "Paragraph", text } },
  }),
];

async function errorOf(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  assert.fail("expected the call to fail");
}

function auditRecords(file: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("documents over RPC", () => {
  let d: TestDaemon;
  let auditFile: string;
  const master = (p: Protocol = "connect") => clientFor(Documents, p, d, d.token);
  const asBob = (p: Protocol = "connect") =>
    clientFor(Documents, p, d, WEB, {
      "x-seed-principal": BOB.principal,
      "x-seed-principal-proof": loginProof(BOB.seed, SITE),
    });

  before(async () => {
    auditFile = join(tempDir(), "audit.jsonl");
    d = await startDaemon({
      env: { SEED_DAEMON_WEB_TOKEN: WEB },
      args: ["--cors-origin", SITE, "--audit-log", auditFile],
    });
    const daemon = clientFor(Daemon, "connect", d, d.token);
    await daemon.registerKey({ name: "alice", mnemonic: ALICE_WORDS });
    await daemon.registerKey({ name: "carol", mnemonic: CAROL_WORDS });
  });
  after(async () => {
    await d.stop();
  });

  test("create, read, list and page through a public document; versions and history", async () => {
    const docs = master();
    const v1 = await docs.createDocumentChange({
      account: ALICE.principal,
      path: "/notes",
      signingKeyName: "alice",
      changes: [title("Notes"), ...paragraph("b1", "first")],
    });
    assert.equal(v1.metadata.title, "Notes");
    assert.equal(v1.content[0]?.block?.text, "first");
    assert.equal(v1.visibility, ResourceVisibility.PUBLIC);
    assert.deepEqual(v1.authors, [ALICE.principal]);

    // An existing document needs its base version.
    const noBase = await errorOf(
      docs.createDocumentChange({
        account: ALICE.principal,
        path: "/notes",
        signingKeyName: "alice",
        changes: [title("x")],
      }),
    );
    assert.equal(noBase.code, Code.FailedPrecondition);

    const v2 = await docs.createDocumentChange({
      account: ALICE.principal,
      path: "/notes",
      signingKeyName: "alice",
      baseVersion: v1.version,
      changes: paragraph("b2", "second", "b1"),
    });
    // A change on the stale v1 is merged, not lost.
    const v3 = await docs.createDocumentChange({
      account: ALICE.principal,
      path: "/notes",
      signingKeyName: "alice",
      baseVersion: v1.version,
      changes: [title("Renamed")],
    });
    assert.equal(v3.metadata.title, "Renamed");
    assert.deepEqual(
      v3.content.map((n) => n.block?.text),
      ["first", "second"],
    );
    assert.equal(v3.version.split(".").length, 2, "two concurrent heads");

    // Reading an older version gives the document as of then.
    const old = await docs.getDocument({
      account: ALICE.principal,
      path: "/notes",
      version: v1.version,
    });
    assert.equal(old.metadata.title, "Notes");
    assert.equal(old.content.length, 1);
    const current = await docs.getDocument({ account: ALICE.principal, path: "/notes" });
    assert.equal(current.version, v3.version);
    assert.notEqual(current.version, v2.version);

    // History: the genesis and three changes, paged two at a time.
    const first = await docs.listDocumentChanges({
      account: ALICE.principal,
      path: "/notes",
      pageSize: 2,
    });
    assert.equal(first.changes.length, 2);
    assert.notEqual(first.nextPageToken, "");
    const rest = await docs.listDocumentChanges({
      account: ALICE.principal,
      path: "/notes",
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    const all = [...first.changes, ...rest.changes];
    assert.equal(all.length, 4);
    assert.equal(rest.nextPageToken, "");
    assert.deepEqual(all[3]?.deps, [], "newest first: the genesis comes last");
    assert.ok(
      all.every(
        (c, i) =>
          i === 0 || (c.createTime?.seconds ?? 0n) <= (all[i - 1]?.createTime?.seconds ?? 0n),
      ),
    );

    const list = await docs.listDocuments({ account: ALICE.principal });
    const item = list.documents.find((x) => x.path === "/notes");
    assert.equal(item?.metadata.title, "Renamed");
  });

  test("the home document is created with Seed's fixed genesis, and dated by its first change", async () => {
    const home = await master().createDocumentChange({
      account: ALICE.principal,
      path: "",
      signingKeyName: "alice",
      changes: [title("Alice")],
    });
    const created = Number(home.createTime?.seconds ?? 0n) * 1000;
    assert.ok(Math.abs(Date.now() - created) < 120_000, "create_time is now, not 1970");
    const changes = await master().listDocumentChanges({ account: ALICE.principal, path: "" });
    assert.equal(changes.changes.length, 2);
    assert.equal(changes.changes[1]?.createTime?.seconds, 0n, "the fixed genesis has ts 0");
    assert.equal(
      await codeOf(
        master().deleteDocument({ account: ALICE.principal, path: "", signingKeyName: "alice" }),
      ),
      Code.FailedPrecondition,
    );
  });

  test("bad input is invalid_argument and stores nothing", async () => {
    const docs = master();
    // Thunks: a call made before the loop awaits it could reject unobserved meanwhile.
    const cases: [string, () => Promise<unknown>][] = [
      ["bad path", () => docs.getDocument({ account: ALICE.principal, path: "/a/" })],
      ["bad account", () => docs.getDocument({ account: "z6Mk-not-a-key", path: "/a" })],
      [
        "no changes",
        () =>
          docs.createDocumentChange({
            account: ALICE.principal,
            path: "/x",
            signingKeyName: "alice",
          }),
      ],
      [
        "path with a quote",
        () =>
          docs.createDocumentChange({
            account: ALICE.principal,
            path: '/a"b',
            signingKeyName: "alice",
            changes: [title("x")],
          }),
      ],
      [
        "move under a missing parent",
        () =>
          docs.createDocumentChange({
            account: ALICE.principal,
            path: "/x",
            signingKeyName: "alice",
            changes: [
              create(DocumentChangeSchema, {
                op: { case: "moveBlock", value: { blockId: "b", parent: "nope".repeat(100) } },
              }),
            ],
          }),
      ],
    ];
    for (const [name, call] of cases) {
      const err = await errorOf(call());
      assert.equal(err.code, Code.InvalidArgument, name);
      assert.ok(err.rawMessage.length < 300, `${name}: message is bounded`);
    }
    assert.equal(
      await codeOf(docs.getDocument({ account: ALICE.principal, path: "/x" })),
      Code.NotFound,
    );
    const store = await errorOf(
      clientFor(Daemon, "connect", d, d.token).storeBlobs({
        blobs: [{ data: new Uint8Array([1, 2, 3]) }],
      }),
    );
    assert.equal(store.code, Code.InvalidArgument);
  });

  test("a private document is read by its owner, and by nobody else without a capability", async () => {
    await master().createDocumentChange({
      account: ALICE.principal,
      path: "/private/plans",
      signingKeyName: "alice",
      visibility: ResourceVisibility.PRIVATE,
      changes: [title("Plans")],
    });
    const owner = await master().getDocument({ account: ALICE.principal, path: "/private/plans" });
    assert.equal(owner.visibility, ResourceVisibility.PRIVATE);

    const anonymous = clientFor(Documents, "connect", d, WEB);
    const missing = await errorOf(
      anonymous.getDocument({ account: ALICE.principal, path: "/private/none" }),
    );
    for (const [who, client] of [
      ["anonymous", anonymous],
      ["bob without a capability", asBob()],
    ] as const) {
      for (const protocol of ["connect", "grpc"] as const) {
        const c =
          protocol === "connect"
            ? client
            : who === "anonymous"
              ? clientFor(Documents, "grpc", d, WEB)
              : asBob("grpc");
        const err = await errorOf(
          c.getDocument({ account: ALICE.principal, path: "/private/plans" }),
        );
        assert.equal(err.code, missing.code, `${who} ${protocol}`);
        assert.equal(
          err.rawMessage,
          missing.rawMessage,
          `${who} ${protocol}: same message as missing`,
        );
        const changes = await errorOf(
          c.listDocumentChanges({
            account: ALICE.principal,
            path: "/private/plans",
            pageToken: "junk",
          }),
        );
        assert.equal(changes.code, Code.NotFound, `${who}: changes`);
        const list = await c.listDocuments({ account: ALICE.principal });
        assert.ok(!list.documents.some((x) => x.path === "/private/plans"), `${who}: not listed`);
      }
    }

    // Alice grants Bob READER on /private: Bob reads /private/plans, not /privateer.
    const cap = await clientFor(AccessControl, "connect", d, d.token).createCapability({
      signingKeyName: "alice",
      account: ALICE.principal,
      delegate: BOB.principal,
      path: "/private",
      role: Role.READER,
    });
    assert.equal(cap.issuer, ALICE.principal);
    const read = await asBob().getDocument({ account: ALICE.principal, path: "/private/plans" });
    assert.equal(read.metadata.title, "Plans");
    const listed = await asBob().listDocuments({ account: ALICE.principal });
    assert.ok(listed.documents.some((x) => x.path === "/private/plans"));

    const records = auditRecords(auditFile).filter((r) => r.event === "document.read");
    const granted = records.find((r) => r.outcome === "granted" && r.principal === BOB.principal);
    assert.equal(granted?.capability, cap.id);
    assert.equal(granted?.credential, "web");
    assert.equal(granted?.path, "/private/plans");
    assert.ok(records.some((r) => r.outcome === "denied" && r.path === "/private/plans"));
  });

  test("a paired origin's token reads public documents only", async () => {
    const pair = await clientFor(Daemon, "connect", d, d.token).pairOrigin({
      origin: "https://paired.example",
    });
    const paired = clientFor(Documents, "connect", d, pair.token, {
      origin: "https://paired.example",
    });
    assert.equal(
      await codeOf(paired.getDocument({ account: ALICE.principal, path: "/notes" })),
      "ok",
    );
    assert.equal(
      await codeOf(paired.getDocument({ account: ALICE.principal, path: "/private/plans" })),
      Code.NotFound,
    );
  });

  test("writes: a non-owner key needs a WRITER capability; deleting", async () => {
    const docs = master();
    const acl = clientFor(AccessControl, "connect", d, d.token);
    const write = () =>
      docs.createDocumentChange({
        account: ALICE.principal,
        path: "/shared/doc",
        signingKeyName: "carol",
        changes: [title("by carol")],
      });
    assert.equal(await codeOf(write()), Code.PermissionDenied);
    // Signed by Carol for Alice's space: refused, the signer is the space.
    assert.equal(
      await codeOf(
        acl.createCapability({
          signingKeyName: "carol",
          account: ALICE.principal,
          delegate: CAROL.principal,
          role: Role.WRITER,
        }),
      ),
      Code.InvalidArgument,
    );
    await acl.createCapability({
      signingKeyName: "alice",
      account: ALICE.principal,
      delegate: CAROL.principal,
      path: "/shared",
      role: Role.WRITER,
    });
    const doc = await write();
    assert.deepEqual(doc.authors, [CAROL.principal]);

    await docs.deleteDocument({
      account: ALICE.principal,
      path: "/shared/doc",
      signingKeyName: "alice",
    });
    assert.equal(
      await codeOf(docs.getDocument({ account: ALICE.principal, path: "/shared/doc" })),
      Code.NotFound,
    );
    assert.equal(
      await codeOf(
        docs.deleteDocument({ account: ALICE.principal, path: "", signingKeyName: "alice" }),
      ),
      Code.FailedPrecondition,
    );
  });

  test("StoreBlobs indexes a capability made elsewhere; who sees capabilities", async () => {
    // Made by Bob's own software (tweetnacl), not by this daemon.
    const bobKeys = nacl.sign.keyPair.fromSeed(BOB.seed);
    const blob = createCapability(
      {
        signer: BOB.principal,
        ts: Date.now(),
        delegate: CAROL.principal,
        role: "WRITER",
        path: "/b",
      },
      (data) => nacl.sign.detached(data, bobKeys.secretKey),
    );
    const res = await clientFor(Daemon, "grpc", d, d.token).storeBlobs({
      blobs: [{ data: blob.bytes }],
    });
    assert.deepEqual(res.cids, [blob.cid]);

    const acl = (token: string, headers: Record<string, string> = {}) =>
      clientFor(AccessControl, "connect", d, token, headers);
    const local = await acl(d.token).listCapabilitiesForDelegate({ delegate: CAROL.principal });
    assert.ok(local.capabilities.some((c) => c.id === blob.cid && c.path === "/b"));
    assert.equal((await acl(d.token).getCapability({ id: blob.cid })).issuer, BOB.principal);
    // Bob, logged in, sees what he signed; an anonymous web caller sees nothing.
    const bob = acl(WEB, {
      "x-seed-principal": BOB.principal,
      "x-seed-principal-proof": loginProof(BOB.seed, SITE),
    });
    assert.equal((await bob.getCapability({ id: blob.cid })).id, blob.cid);
    assert.equal(await codeOf(acl(WEB).getCapability({ id: blob.cid })), Code.NotFound);
    const anon = await acl(WEB).listCapabilities({ account: BOB.principal, path: "/b" });
    assert.equal(anon.capabilities.length, 0);
    const every = await acl(d.token).listCapabilities({ account: BOB.principal, path: "*" });
    assert.deepEqual(
      every.capabilities.map((c) => c.id),
      [blob.cid],
    );
  });

  test("WatchDocuments streams the versions the caller may read, and ends on shutdown", async () => {
    const w = await startDaemon({ env: { SEED_DAEMON_WEB_TOKEN: WEB } });
    try {
      await clientFor(Daemon, "connect", w, w.token).registerKey({
        name: "alice",
        mnemonic: ALICE_WORDS,
      });
      const docs = clientFor(Documents, "connect", w, w.token);
      const abort = new AbortController();
      const seen: string[] = [];
      const stream = clientFor(Documents, "grpc", w, WEB).watchDocuments(
        { account: ALICE.principal },
        { signal: abort.signal },
      );
      const done = (async () => {
        for await (const ev of stream) seen.push(ev.path);
      })();
      // The watch may not be subscribed yet: write public documents until one is seen.
      const write = (path: string, visibility = ResourceVisibility.PUBLIC) =>
        docs.createDocumentChange({
          account: ALICE.principal,
          path,
          signingKeyName: "alice",
          visibility,
          changes: [title(path)],
        });
      for (let i = 0; seen.length === 0 && i < 100; i++) {
        await write(`/warmup${i}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(seen.length > 0, "the watcher saw a public document");
      await write("/hidden", ResourceVisibility.PRIVATE);
      await write("/visible");
      for (let i = 0; !seen.includes("/visible") && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(seen.includes("/visible"));
      assert.ok(
        !seen.includes("/hidden"),
        "a private document's version is not announced to anonymous",
      );
      // The daemon shutting down ends the stream cleanly.
      const exit = await w.stop("SIGTERM");
      await done;
      assert.equal(exit.code, 0);
      abort.abort();
    } finally {
      if (w.proc.exitCode === null) await w.stop();
    }
  });
});
