import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  BlobError,
  type Change,
  cidForBytes,
  createCapability,
  createChange,
  createHomeGenesisChange,
  createRef,
  type EncodedBlob,
  type WritableOp,
} from "../../src/blob/index.js";
import { DomainError } from "../../src/errors.js";
import { keyFromMnemonic, signingKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";
import { BlobStore, type VersionEvent, validatePath } from "../../src/store/blob-store.js";
import { type Db, openDatabase } from "../../src/store/db.js";
import { StoreError } from "../../src/store/errors.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "seed-blob-store-test-"));
  dirs.push(d);
  return d;
}

interface Key {
  principal: string;
  sign: (data: Uint8Array) => Uint8Array;
}

function mnemonicKey(words: string): Key {
  const k = signingKeyFromSeed(keyFromMnemonic(words.split(" ")));
  return { principal: principalToString(k.publicKey), sign: k.sign };
}

const ALICE = mnemonicKey(
  "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
);
const BOB = mnemonicKey(
  "legal winner thank year wave sausage worth useful legal winner thank yellow",
);
const CAROL = mnemonicKey("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong");

function open(opts: { now?: () => number } = {}): { db: Db; store: BlobStore; dir: string } {
  const dir = tempDir();
  const db = openDatabase(dir);
  return { db, store: new BlobStore(db, opts), dir };
}

function code(c: string, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof DomainError, String(err));
    assert.equal(err.code, c, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  };
}

const paragraph = (id: string, text: string, after?: readonly bigint[]): WritableOp[] => [
  { type: "ReplaceBlock", block: { id, type: "Paragraph", text } },
  { type: "MoveBlocks", blocks: [id], ...(after !== undefined && { ref: after }) },
];
const title = (value: string): WritableOp[] => [
  { type: "SetAttributes", attrs: [{ key: ["title"], value }] },
];

function texts(state: { content: { block: { text: string } }[] }): string[] {
  return state.content.map((n) => n.block.text).sort();
}

function assertBytes(got: Uint8Array | undefined, want: Uint8Array): void {
  assert.ok(got !== undefined, "blob is stored");
  assert.equal(Buffer.compare(got, want), 0);
}

function count(db: Db, table: string): number {
  return db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;
}

/** A hand-built document: genesis + changes + Ref, through src/blob only. */
function handBuilt(key: Key, path: string, n: number, t0 = 1_700_000_000_000) {
  const genesis =
    path === ""
      ? createHomeGenesisChange(key.principal, key.sign)
      : createChange({ signer: key.principal, ts: t0 }, key.sign);
  const changes: EncodedBlob<Change>[] = [genesis];
  let prev = genesis;
  for (let i = 1; i <= n; i++) {
    const c = createChange(
      {
        signer: key.principal,
        ts: t0 + i,
        genesis: genesis.cid,
        deps: [prev.cid],
        depth: i,
        ops: title(`v${i}`),
      },
      key.sign,
    );
    changes.push(c);
    prev = c;
  }
  const ref = createRef(
    {
      signer: key.principal,
      ts: t0 + n + 1,
      path,
      genesisBlob: genesis.cid,
      heads: [prev.cid],
    },
    key.sign,
  );
  return { genesis, changes, ref, head: prev };
}

describe("validatePath", () => {
  it("accepts Seed paths and refuses the rest with a fixed message", () => {
    for (const ok of ["", "/a", "/a/b", "/héllo wörld/ü", "/a-b_c.d"])
      assert.equal(validatePath(ok), ok);
    for (const bad of [
      "/",
      "a",
      "/a/",
      "//a",
      "/a//b",
      '/a"b',
      "/a'b",
      "/a\\b",
      "/a\0b",
      "/a\rb",
      "/a\nb",
      "/a\tb",
      `/${"x".repeat(5000)}`,
    ]) {
      assert.throws(() => validatePath(bad), code("invalid_argument", /^invalid document path$/));
    }
    assert.throws(() => validatePath(7 as unknown as string), code("invalid_argument"));
  });
});

describe("BlobStore.putBlobs", () => {
  it("stores and indexes real signed blobs and serves the document", () => {
    const { db, store } = open();
    const doc = handBuilt(ALICE, "/notes", 3);
    const items = [doc.ref, ...doc.changes].map((b) => ({ bytes: b.bytes }));
    const out = store.putBlobs(items);
    assert.deepEqual(
      out.map((o) => o.cid),
      [doc.ref, ...doc.changes].map((b) => b.cid),
    );
    for (const b of [doc.ref, ...doc.changes]) {
      assertBytes(store.getBlob(b.cid), b.bytes);
    }
    const got = store.getDocument(ALICE.principal, "/notes");
    assert.ok(got !== undefined && !got.deleted);
    assert.equal(got.ref, doc.ref.cid);
    assert.equal(got.visibility, "public");
    assert.equal(got.genesis, doc.genesis.cid);
    assert.equal(got.version, doc.head.cid);
    assert.deepEqual(got.state.metadata, { title: "v3" });
    assert.deepEqual(got.state.heads, [doc.head.cid]);
    assert.equal(count(db, "changes"), 4);
    // Storing the same blobs again is a no-op.
    store.putBlobs(items);
    assert.equal(count(db, "blobs"), 5);
    assert.equal(store.getDocument(ALICE.principal, "/missing"), undefined);
    db.close();
  });

  it("is all-or-nothing: one bad blob in a batch stores nothing", () => {
    const { db, store } = open();
    const doc = handBuilt(ALICE, "/a", 2);
    const corrupt = new Uint8Array(doc.head.bytes);
    corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] as number) ^ 1;
    assert.throws(
      () => store.putBlobs([...doc.changes.map((b) => ({ bytes: b.bytes })), { bytes: corrupt }]),
      (err: unknown) => err instanceof BlobError,
    );
    // A claimed CID that is not the blob's.
    assert.throws(
      () => store.putBlobs([{ bytes: doc.genesis.bytes, cid: doc.head.cid }]),
      (err: unknown) => err instanceof BlobError && err.message === "blob does not match its CID",
    );
    // A change whose dep is neither in the batch nor stored.
    assert.throws(
      () => store.putBlobs([{ bytes: doc.genesis.bytes }, { bytes: doc.head.bytes }]),
      code("invalid_argument", /^change dependencies are not available$/),
    );
    // A Ref whose heads are missing.
    assert.throws(
      () => store.putBlobs([{ bytes: doc.genesis.bytes }, { bytes: doc.ref.bytes }]),
      code("invalid_argument", /^ref heads are not available$/),
    );
    // A failed batch leaves no trace in reads either (nothing half-cached).
    assert.equal(store.getDocument(ALICE.principal, "/a"), undefined);
    for (const t of ["blobs", "blob_cids", "changes", "refs", "documents"]) {
      assert.equal(count(db, t), 0, t);
    }
    assert.equal(store.getBlob(doc.genesis.cid), undefined);
    db.close();
  });

  it("keeps the highest-generation, then latest, Ref current whatever the arrival order", () => {
    const { db, store } = open();
    const doc = handBuilt(ALICE, "/r", 2);
    store.putBlobs([...doc.changes, doc.ref].map((b) => ({ bytes: b.bytes })));
    const older = createRef(
      {
        signer: ALICE.principal,
        ts: 5,
        path: "/r",
        genesisBlob: doc.genesis.cid,
        heads: [doc.changes[1]?.cid as string],
      },
      ALICE.sign,
    );
    store.putBlobs([{ bytes: older.bytes }]);
    assert.equal(store.getDocument(ALICE.principal, "/r")?.ref, doc.ref.cid);
    const nextGen = createRef(
      {
        signer: ALICE.principal,
        ts: 6,
        path: "/r",
        genesisBlob: doc.genesis.cid,
        heads: [doc.changes[1]?.cid as string],
        generation: 1,
      },
      ALICE.sign,
    );
    store.putBlobs([{ bytes: nextGen.bytes }]);
    const got = store.getDocument(ALICE.principal, "/r");
    assert.equal(got?.ref, nextGen.cid);
    assert.ok(got !== undefined && !got.deleted);
    assert.deepEqual(got.state.metadata, { title: "v1" });
    const flip = createRef(
      {
        signer: ALICE.principal,
        ts: 7,
        path: "/r",
        genesisBlob: doc.genesis.cid,
        heads: [doc.head.cid],
        generation: 2,
        visibility: "Private",
      },
      ALICE.sign,
    );
    assert.throws(
      () => store.putBlobs([{ bytes: flip.bytes }]),
      code("invalid_argument", /^ref visibility differs from the document's$/),
    );
    db.close();
  });

  it("refuses a change that breaks checkChangeDeps (ts not after its dep)", () => {
    const { db, store } = open();
    const g = createChange({ signer: ALICE.principal, ts: 100 }, ALICE.sign);
    const bad = createChange(
      {
        signer: ALICE.principal,
        ts: 100,
        genesis: g.cid,
        deps: [g.cid],
        depth: 1,
        ops: title("x"),
      },
      ALICE.sign,
    );
    assert.throws(
      () => store.putBlobs([{ bytes: g.bytes }, { bytes: bad.bytes }]),
      code("invalid_argument", /^change does not follow its dependencies$/),
    );
    assert.equal(count(db, "blobs"), 0);
    db.close();
  });

  it("serves a blob under its blake2b-256 and sha2-256 CIDs", () => {
    const { db, store } = open();
    const cap = createCapability(
      { signer: ALICE.principal, ts: 1, delegate: BOB.principal, role: "WRITER", path: "/x" },
      ALICE.sign,
    );
    const sha = cidForBytes(cap.bytes, "sha2-256").string;
    const blake = cidForBytes(cap.bytes).string;
    assert.notEqual(sha, blake);
    assert.deepEqual(store.putBlobs([{ bytes: cap.bytes, cid: sha }]), [{ cid: sha }]);
    assertBytes(store.getBlob(sha), cap.bytes);
    assertBytes(store.getBlob(blake), cap.bytes);
    assert.equal(count(db, "blobs"), 1);
    // Stored again under the other CID: still one blob.
    assert.deepEqual(store.putBlobs([{ bytes: cap.bytes }]), [{ cid: blake }]);
    assert.equal(count(db, "blobs"), 1);
    assert.equal(store.getCapability(sha)?.cid, blake);
    assert.throws(
      () => store.getBlob("not-a-cid"),
      (e: unknown) => e instanceof BlobError,
    );
    db.close();
  });

  it("refuses a Ref by a non-owner unless a stored WRITER capability covers the path", () => {
    const { db, store } = open();
    const doc = handBuilt(ALICE, "/team", 1);
    store.putBlobs(doc.changes.map((b) => ({ bytes: b.bytes })));
    const bobRef = createRef(
      {
        signer: BOB.principal,
        ts: 2_000_000_000_000,
        space: ALICE.principal,
        path: "/team",
        genesisBlob: doc.genesis.cid,
        heads: [doc.head.cid],
      },
      BOB.sign,
    );
    assert.throws(
      () => store.putBlobs([{ bytes: bobRef.bytes }]),
      code("invalid_argument", /^ref signer may not write this document$/),
    );
    const sibling = createCapability(
      { signer: ALICE.principal, ts: 1, delegate: BOB.principal, role: "WRITER", path: "/te" },
      ALICE.sign,
    );
    assert.throws(
      () => store.putBlobs([{ bytes: sibling.bytes }, { bytes: bobRef.bytes }]),
      code("invalid_argument"),
    );
    const cap = createCapability(
      { signer: ALICE.principal, ts: 1, delegate: BOB.principal, role: "WRITER", path: "/team" },
      ALICE.sign,
    );
    store.putBlobs([{ bytes: bobRef.bytes }, { bytes: cap.bytes }]);
    assert.equal(store.getDocument(ALICE.principal, "/team")?.ref, bobRef.cid);
    db.close();
  });
});

describe("BlobStore documents", () => {
  it("commits changes, merges a stale base instead of losing a change, reads older versions", () => {
    let t = 1_000;
    const { db, store } = open({ now: () => t });
    const v1 = store.commitChange({
      account: ALICE.principal,
      path: "/doc",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title("first"),
    });
    assert.equal(v1.heads.length, 1);
    // Two writers on the same base (v1): the second base is stale when it lands.
    const a = store.commitChange({
      account: ALICE.principal,
      path: "/doc",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: paragraph("a", "from A"),
      baseVersion: v1.version,
    });
    const b = store.commitChange({
      account: ALICE.principal,
      path: "/doc",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: paragraph("b", "from B"),
      baseVersion: v1.version,
    });
    assert.deepEqual(b.heads, [a.change, b.change].sort());
    const cur = store.getDocument(ALICE.principal, "/doc");
    assert.ok(cur !== undefined && !cur.deleted);
    assert.deepEqual(texts(cur.state), ["from A", "from B"]);
    assert.equal(cur.state.metadata.title, "first");
    // Older versions.
    const atA = store.getDocument(ALICE.principal, "/doc", a.version);
    assert.ok(atA !== undefined && !atA.deleted);
    assert.deepEqual(texts(atA.state), ["from A"]);
    const atV1 = store.getDocument(ALICE.principal, "/doc", v1.version);
    assert.ok(atV1 !== undefined && !atV1.deleted);
    assert.deepEqual(atV1.state.content, []);
    // Unknown heads: not_found; malformed: invalid_argument; both with fixed messages.
    const foreign = createChange({ signer: BOB.principal, ts: 5 }, BOB.sign);
    assert.throws(
      () => store.getDocument(ALICE.principal, "/doc", foreign.cid),
      code("not_found", /^document version not found$/),
    );
    assert.throws(
      () => store.getDocument(ALICE.principal, "/doc", "x'; DROP TABLE refs; --"),
      code("invalid_argument", /^invalid document version$/),
    );
    // ts grows past the clock when the clock stands still, and along deps.
    t = 0;
    const c = store.commitChange({
      account: ALICE.principal,
      path: "/doc",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title("second"),
      baseVersion: b.version,
    });
    assert.deepEqual(c.heads, [c.change]);
    const changes = store.listDocumentChanges(ALICE.principal, "/doc").items;
    assert.equal(changes.length, 5);
    assert.ok(changes[4]?.isGenesis, "newest first: the genesis is last");
    const ts = changes.map((x) => x.ts);
    assert.deepEqual(
      ts,
      [...ts].sort((x, y) => y - x),
    );
    assert.equal(new Set(ts).size, ts.length);
    db.close();
  });

  it("requires a base version for an existing document and keeps visibility", () => {
    const { db, store } = open();
    const base = { account: ALICE.principal, signer: ALICE.principal, sign: ALICE.sign };
    const v1 = store.commitChange({ ...base, path: "/p", ops: title("x"), visibility: "private" });
    assert.equal(v1.visibility, "private");
    assert.throws(
      () => store.commitChange({ ...base, path: "/p", ops: title("y") }),
      code("failed_precondition", /^base version is required for an existing document$/),
    );
    assert.throws(
      () =>
        store.commitChange({
          ...base,
          path: "/p",
          ops: title("y"),
          baseVersion: v1.version,
          visibility: "public",
        }),
      code("failed_precondition", /^document visibility cannot be changed$/),
    );
    const v2 = store.commitChange({
      ...base,
      path: "/p",
      ops: title("y"),
      baseVersion: v1.version,
    });
    assert.equal(v2.visibility, "private");
    assert.equal(store.getDocument(ALICE.principal, "/p")?.visibility, "private");
    assert.throws(
      () => store.commitChange({ ...base, path: "", ops: title("h"), visibility: "private" }),
      code("failed_precondition"),
    );
    assert.throws(
      () => store.commitChange({ ...base, path: "/p", ops: [] }),
      code("invalid_argument"),
    );
    // An op the document model refuses (a move after an op that does not exist) stores nothing.
    const before = count(db, "blobs");
    assert.throws(
      () =>
        store.commitChange({
          ...base,
          path: "/p",
          ops: paragraph("z", "z", [1n, 2n, 3n]),
          baseVersion: v2.version,
        }),
      code("invalid_argument", /^change cannot be applied to the document$/),
    );
    assert.equal(count(db, "blobs"), before);
    // The cached state was not touched by the refused change.
    const again = store.getDocument(ALICE.principal, "/p");
    assert.ok(again !== undefined && !again.deleted);
    assert.equal(again.version, v2.version);
    assert.deepEqual(again.state.metadata, { title: "y" });
    db.close();
  });

  it("uses Seed's fixed home genesis for the home document", () => {
    const { db, store } = open();
    const home = store.commitChange({
      account: ALICE.principal,
      path: "",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title("Alice"),
    });
    assert.equal(home.genesis, createHomeGenesisChange(ALICE.principal, ALICE.sign).cid);
    assert.throws(
      () =>
        store.commitChange({
          account: BOB.principal,
          path: "",
          signer: ALICE.principal,
          sign: ALICE.sign,
          ops: title("x"),
        }),
      code("failed_precondition"),
    );
    assert.throws(
      () =>
        store.deleteDocument({
          account: ALICE.principal,
          path: "",
          signer: ALICE.principal,
          sign: ALICE.sign,
        }),
      code("failed_precondition", /^the home document cannot be deleted$/),
    );
    db.close();
  });

  it("deletes with a tombstone, and a re-created document starts a new genesis", () => {
    const { db, store } = open();
    const base = { account: ALICE.principal, signer: ALICE.principal, sign: ALICE.sign };
    const v1 = store.commitChange({ ...base, path: "/gone", ops: title("x") });
    const events: VersionEvent[] = [];
    store.onVersion((e) => events.push(e));
    store.deleteDocument({ ...base, path: "/gone" });
    const del = store.getDocument(ALICE.principal, "/gone");
    assert.ok(del?.deleted);
    assert.equal(del.state, undefined);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.deleted, true);
    assert.equal(events[0]?.version, "");
    assert.deepEqual(store.listDocuments(ALICE.principal).items, []);
    assert.throws(
      () => store.listDocumentChanges(ALICE.principal, "/gone"),
      code("not_found", /^document not found$/),
    );
    assert.throws(() => store.deleteDocument({ ...base, path: "/gone" }), code("not_found"));
    const v2 = store.commitChange({ ...base, path: "/gone", ops: title("again") });
    assert.notEqual(v2.genesis, v1.genesis);
    const back = store.getDocument(ALICE.principal, "/gone");
    assert.ok(back !== undefined && !back.deleted);
    assert.deepEqual(back.state.metadata, { title: "again" });
    db.close();
  });

  it("announces committed versions only", () => {
    const { db, store } = open();
    const events: VersionEvent[] = [];
    const off = store.onVersion((e) => events.push(e));
    store.onVersion(() => {
      throw new Error("a broken listener");
    });
    const v1 = store.commitChange({
      account: ALICE.principal,
      path: "/w",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title("x"),
      visibility: "private",
    });
    assert.deepEqual(
      events.map((e) => [e.account, e.path, e.version, e.visibility, e.deleted]),
      [[ALICE.principal, "/w", v1.version, "private", false]],
    );
    assert.throws(() =>
      store.commitChange({
        account: ALICE.principal,
        path: "/w",
        signer: ALICE.principal,
        sign: ALICE.sign,
        ops: title("y"),
      }),
    );
    assert.equal(events.length, 1);
    off();
    store.commitChange({
      account: ALICE.principal,
      path: "/w",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title("y"),
      baseVersion: v1.version,
    });
    assert.equal(events.length, 1);
    db.close();
  });

  it("paginates documents with stable, unforgeable tokens", () => {
    const { db, store } = open();
    const paths = Array.from({ length: 23 }, (_, i) => `/d${String(i).padStart(2, "0")}`);
    for (const path of ["", ...paths]) {
      store.commitChange({
        account: ALICE.principal,
        path,
        signer: ALICE.principal,
        sign: ALICE.sign,
        ops: title(path),
        visibility: path === "/d05" || path === "/d21" ? "private" : "public",
      });
    }
    store.commitChange({
      account: BOB.principal,
      path: "/bob",
      signer: BOB.principal,
      sign: BOB.sign,
      ops: title("b"),
    });
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = store.listDocuments(ALICE.principal, { pageSize: 5, pageToken: token });
      assert.ok(page.items.length <= 5);
      seen.push(...page.items.map((e) => e.path));
      token = page.nextPageToken;
      pages++;
    } while (token !== "");
    assert.deepEqual(seen, ["", ...paths]);
    assert.equal(pages, 5);
    // Stable: a document added after a token was issued does not shift the pages after it.
    const first = store.listDocuments(ALICE.principal, { pageSize: 5 });
    store.commitChange({
      account: ALICE.principal,
      path: "/a",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title("a"),
    });
    const second = store.listDocuments(ALICE.principal, {
      pageSize: 5,
      pageToken: first.nextPageToken,
    });
    assert.deepEqual(
      second.items.map((e) => e.path),
      ["/d04", "/d05", "/d06", "/d07", "/d08"],
    );
    // A filter is applied inside the page: hidden documents never show in sizes or tokens.
    const visible = (e: { visibility: string }) => e.visibility === "public";
    const all: string[] = [];
    token = "";
    do {
      const page = store.listDocuments(ALICE.principal, { pageSize: 4, pageToken: token, visible });
      assert.ok(page.items.length === 4 || page.nextPageToken === "");
      all.push(...page.items.map((e) => e.path));
      token = page.nextPageToken;
    } while (token !== "");
    assert.equal(all.length, 23);
    assert.ok(!all.includes("/d05") && !all.includes("/d21"));
    const tail = store.listDocuments(ALICE.principal, {
      pageSize: 1,
      pageToken: Buffer.from(JSON.stringify(["d", "/d20"])).toString("base64url"),
      visible,
    });
    assert.deepEqual(
      tail.items.map((e) => e.path),
      ["/d22"],
    );
    assert.equal(tail.nextPageToken, "");
    // Bad tokens and sizes.
    for (const bad of [
      "!!!",
      "eyJ",
      Buffer.from("not json").toString("base64url"),
      Buffer.from(JSON.stringify(["c", 1, "x"])).toString("base64url"),
      Buffer.from(JSON.stringify(["d", 5])).toString("base64url"),
      Buffer.from(JSON.stringify(["d", "/a", "extra"])).toString("base64url"),
      `${Buffer.from(JSON.stringify(["d", "/a"])).toString("base64")}=`,
      "A".repeat(10_000),
    ]) {
      assert.throws(
        () => store.listDocuments(ALICE.principal, { pageToken: bad }),
        code("invalid_argument", /^invalid page token$/),
        bad,
      );
    }
    assert.throws(
      () => store.listDocuments(ALICE.principal, { pageSize: -1 }),
      code("invalid_argument"),
    );
    assert.throws(
      () => store.listDocuments(ALICE.principal, { pageSize: 1.5 }),
      code("invalid_argument"),
    );
    assert.deepEqual(
      store.documentsOf([BOB.principal, CAROL.principal]).map((e) => e.path),
      ["/bob"],
    );
    assert.equal(store.documentsOf([ALICE.principal, BOB.principal]).length, 26);
    db.close();
  });

  it("reads a 1,000-change document and pages through its changes", () => {
    const { db, store } = open();
    const doc = handBuilt(ALICE, "/big", 999);
    store.putBlobs([doc.ref, ...doc.changes].map((b) => ({ bytes: b.bytes })));
    const got = store.getDocument(ALICE.principal, "/big");
    assert.ok(got !== undefined && !got.deleted);
    assert.deepEqual(got.state.metadata, { title: "v999" });
    // A repeated read is served from the state cache: the very same rendered object.
    assert.equal(store.getDocument(ALICE.principal, "/big")?.state, got.state);
    // A change on top of it, then the whole history, genesis included, 128 at a time.
    const next = store.commitChange({
      account: ALICE.principal,
      path: "/big",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: paragraph("p", "last"),
      baseVersion: got.version,
    });
    const cids: string[] = [];
    let token = "";
    do {
      const page = store.listDocumentChanges(ALICE.principal, "/big", {
        pageSize: 128,
        pageToken: token,
      });
      cids.push(...page.items.map((c) => c.cid));
      token = page.nextPageToken;
    } while (token !== "");
    assert.equal(cids.length, 1001);
    // Newest first.
    assert.equal(cids[0], next.change);
    assert.equal(cids[1000], doc.genesis.cid);
    assert.equal(new Set(cids).size, 1001);
    const old = store.getDocument(ALICE.principal, "/big", doc.changes[500]?.cid);
    assert.ok(old !== undefined && !old.deleted);
    assert.deepEqual(old.state.metadata, { title: "v500" });
    db.close();
  });

  it("keeps everything across a reopen of the database file", () => {
    const { db, store, dir } = open();
    const v = store.commitChange({
      account: ALICE.principal,
      path: "/durable",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: paragraph("p", "kept"),
      visibility: "private",
    });
    const cap = createCapability(
      { signer: ALICE.principal, ts: 1, delegate: BOB.principal, role: "READER", path: "/durable" },
      ALICE.sign,
    );
    store.putBlobs([{ bytes: cap.bytes }]);
    db.close();
    const db2 = openDatabase(dir);
    const store2 = new BlobStore(db2);
    const got = store2.getDocument(ALICE.principal, "/durable");
    assert.ok(got !== undefined && !got.deleted);
    assert.equal(got.version, v.version);
    assert.equal(got.visibility, "private");
    assert.deepEqual(texts(got.state), ["kept"]);
    assert.equal(store2.listCapabilitiesForDelegate(BOB.principal)[0]?.cid, cap.cid);
    assert.ok(store2.getBlob(v.change) !== undefined);
    db2.close();
  });
});

describe("BlobStore capabilities and blob visibility", () => {
  it("lists capabilities by the segment-prefix rule", () => {
    const { db, store } = open();
    const mk = (path: string, extra: { noRecursive?: boolean; delegate?: string } = {}) =>
      createCapability(
        {
          signer: ALICE.principal,
          ts: 10,
          delegate: extra.delegate ?? BOB.principal,
          role: "READER",
          path,
          ...(extra.noRecursive !== undefined && { noRecursive: extra.noRecursive }),
        },
        ALICE.sign,
      );
    const all = mk("");
    const a = mk("/a");
    const ab = mk("/ab");
    const aOnly = mk("/a", { noRecursive: true, delegate: CAROL.principal });
    const aB = mk("/a/b");
    const bobs = createCapability(
      { signer: BOB.principal, ts: 10, delegate: CAROL.principal, role: "READER", path: "/a" },
      BOB.sign,
    );
    store.putBlobs([all, a, ab, aOnly, aB, bobs].map((c) => ({ bytes: c.bytes })));
    const cids = (xs: readonly { cid: string }[]) => xs.map((x) => x.cid).sort();
    assert.deepEqual(
      cids(store.listCapabilities(ALICE.principal, "/a/b")),
      [all.cid, a.cid, aB.cid].sort(),
    );
    assert.deepEqual(
      cids(store.listCapabilities(ALICE.principal, "/a")),
      [all.cid, a.cid, aOnly.cid].sort(),
    );
    assert.deepEqual(
      cids(store.listCapabilities(ALICE.principal, "/ab")),
      [all.cid, ab.cid].sort(),
    );
    assert.deepEqual(
      cids(store.listCapabilities(ALICE.principal, "/a", { ignoreInherited: true })),
      [a.cid, aOnly.cid].sort(),
    );
    assert.deepEqual(cids(store.listCapabilities(ALICE.principal, "")), [all.cid]);
    assert.deepEqual(
      cids(store.listCapabilitiesForDelegate(CAROL.principal)),
      [aOnly.cid, bobs.cid].sort(),
    );
    // Lists are cached for the read rule; storing a capability is seen at once.
    const later = createCapability(
      { signer: ALICE.principal, ts: 11, delegate: CAROL.principal, role: "READER", path: "/a/b" },
      ALICE.sign,
    );
    store.putBlobs([{ bytes: later.bytes }]);
    assert.deepEqual(
      cids(store.listCapabilitiesForDelegate(CAROL.principal)),
      [aOnly.cid, bobs.cid, later.cid].sort(),
    );
    assert.ok(cids(store.listCapabilities(ALICE.principal, "/a/b")).includes(later.cid));
    const got = store.getCapability(aOnly.cid);
    assert.deepEqual(got && [got.signer, got.delegate, got.path, got.role, got.noRecursive], [
      ALICE.principal,
      CAROL.principal,
      "/a",
      "READER",
      true,
    ]);
    assert.throws(() => store.listCapabilities(ALICE.principal, "/a/"), code("invalid_argument"));
    db.close();
  });

  it("tells which documents a blob belongs to, so private-only blobs stay distinguishable", () => {
    const { db, store } = open();
    const base = { account: ALICE.principal, signer: ALICE.principal, sign: ALICE.sign };
    const secret = store.commitChange({
      ...base,
      path: "/secret",
      ops: title("s"),
      visibility: "private",
    });
    const open_ = store.commitChange({ ...base, path: "/open", ops: title("o") });
    const cap = createCapability(
      { signer: ALICE.principal, ts: 1, delegate: BOB.principal, role: "READER", path: "/secret" },
      ALICE.sign,
    );
    store.putBlobs([{ bytes: cap.bytes }]);
    const priv = [
      { account: ALICE.principal, path: "/secret", visibility: "private", deleted: false },
    ];
    assert.deepEqual(store.blobReadTarget(secret.change), { kind: "document", documents: priv });
    assert.deepEqual(store.blobReadTarget(secret.genesis), { kind: "document", documents: priv });
    assert.deepEqual(store.blobReadTarget(secret.ref), { kind: "document", documents: priv });
    const sha = cidForBytes(store.getBlob(secret.change) as Uint8Array, "sha2-256").string;
    assert.deepEqual(store.blobReadTarget(sha), { kind: "document", documents: priv });
    assert.deepEqual(store.blobReadTarget(open_.change), {
      kind: "document",
      documents: [
        { account: ALICE.principal, path: "/open", visibility: "public", deleted: false },
      ],
    });
    assert.deepEqual(store.blobReadTarget(cap.cid), {
      kind: "capability",
      account: ALICE.principal,
      path: "/secret",
    });
    const unknown = createChange({ signer: CAROL.principal, ts: 1 }, CAROL.sign);
    assert.equal(store.blobReadTarget(unknown.cid), undefined);
    // A change stored with no Ref naming its genesis belongs to no document.
    store.putBlobs([{ bytes: unknown.bytes }]);
    assert.deepEqual(store.blobReadTarget(unknown.cid), { kind: "document", documents: [] });
    // Deleted, then re-created public at the same path: the old private blobs stay gone.
    store.deleteDocument({ ...base, path: "/secret" });
    const again = store.commitChange({ ...base, path: "/secret", ops: title("new") });
    const gone = [{ ...priv[0], deleted: true }];
    assert.deepEqual(store.blobReadTarget(secret.change), { kind: "document", documents: gone });
    assert.deepEqual(store.blobReadTarget(secret.ref), { kind: "document", documents: gone });
    assert.deepEqual(store.blobReadTarget(again.change), {
      kind: "document",
      documents: [
        { account: ALICE.principal, path: "/secret", visibility: "public", deleted: false },
      ],
    });
    db.close();
  });

  it("lets a delegate with a WRITER capability commit to the owner's document", () => {
    const { db, store } = open();
    const v1 = store.commitChange({
      account: ALICE.principal,
      path: "/shared/doc",
      signer: ALICE.principal,
      sign: ALICE.sign,
      ops: title("owner"),
    });
    const input = {
      account: ALICE.principal,
      path: "/shared/doc",
      signer: BOB.principal,
      sign: BOB.sign,
      ops: title("bob"),
      baseVersion: v1.version,
    };
    assert.throws(() => store.commitChange(input), code("invalid_argument"));
    const cap = createCapability(
      { signer: ALICE.principal, ts: 1, delegate: BOB.principal, role: "WRITER", path: "/shared" },
      ALICE.sign,
    );
    const v2 = store.commitChange({ ...input, capability: cap });
    const got = store.getDocument(ALICE.principal, "/shared/doc");
    assert.ok(got !== undefined && !got.deleted);
    assert.equal(got.version, v2.version);
    assert.deepEqual(got.state.authors, [ALICE.principal, BOB.principal].sort());
    assert.ok(store.getCapability(cap.cid) !== undefined);
    assert.ok(!(store.getDocument(ALICE.principal, "/shared/doc") instanceof StoreError));
    db.close();
  });
});
