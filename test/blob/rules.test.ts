import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as dagCbor from "@ipld/dag-cbor";
import { CID } from "multiformats/cid";
import {
  checkChangeDeps,
  cidForBytes,
  createCapability,
  createChange,
  createHomeGenesisChange,
  createRef,
  decodeBlob,
  decodeBlobOfType,
  isGenesisChange,
  BLOB_ERROR_MESSAGES as M,
  refSpace,
  type WritableOp,
} from "../../src/blob/index.js";
import {
  ABANDON_ABOUT,
  assertBlobError,
  LEGAL_WINNER,
  mnemonicKey,
  naclSignMap,
  naclVerifyBlob,
} from "./helpers.js";

const alice = mnemonicKey(ABANDON_ABOUT);
const bob = mnemonicKey(LEGAL_WINNER);
const TS = 1_700_000_000_000;

const keysOf = (bytes: Uint8Array): string[] =>
  Object.keys(dagCbor.decode(bytes) as Record<string, unknown>).sort();

const OPS: WritableOp[] = [
  { type: "SetAttributes", attrs: [{ key: ["title"], value: "Hello" }] },
  {
    type: "ReplaceBlock",
    block: {
      id: "b1",
      type: "Paragraph",
      text: "Hello world",
      annotations: [{ type: "Bold", starts: [0], ends: [5] }],
      childrenType: "Group",
    },
  },
  { type: "MoveBlocks", blocks: ["b1", "b2"], ref: [BigInt(TS - 1), 3n, 2n ** 63n + 5n] },
  { type: "DeleteBlocks", blocks: ["b3", "b4"] },
];

describe("Change shape rules", () => {
  const g = createChange({ signer: alice.principal, ts: TS, ops: OPS }, alice.sign);

  it("a genesis change has no genesis, deps or depth", () => {
    assert.deepEqual(keysOf(g.bytes), ["body", "sig", "signer", "ts", "type"]);
    assert.ok(isGenesisChange(g.blob));
    assert.ok(naclVerifyBlob(g.bytes, alice.publicKey));
    const back = decodeBlob(g.bytes, g.cid);
    assert.deepEqual(back.blob, g.blob);
    assert.deepEqual(back.blob.type === "Change" && back.blob.body?.ops, OPS);
    // Seed's logical count: 1 attr + 1 block + 2 moved + 2 deleted.
    assert.equal(back.blob.type === "Change" && back.blob.body?.opCount, 6);
  });

  it("a non-genesis change has genesis, deps and depth, deps sorted by binary CID", () => {
    const c1 = createChange(
      { signer: alice.principal, ts: TS + 1, genesis: g.cid, deps: [g.cid], depth: 1, ops: OPS },
      alice.sign,
    );
    const c2 = createChange(
      { signer: bob.principal, ts: TS + 2, genesis: g.cid, deps: [g.cid], depth: 1 },
      bob.sign,
    );
    const sha = cidForBytes(c1.bytes, "sha2-256").string;
    const merge = createChange(
      {
        signer: alice.principal,
        ts: TS + 3,
        genesis: g.cid,
        deps: [c2.cid, c1.cid, c2.cid, sha],
        depth: 2,
        ops: [{ type: "DeleteBlocks", blocks: ["b1"] }],
      },
      alice.sign,
    );
    assert.ok(naclVerifyBlob(merge.bytes, alice.publicKey));
    assert.deepEqual(keysOf(merge.bytes), [
      "body",
      "deps",
      "depth",
      "genesis",
      "sig",
      "signer",
      "ts",
      "type",
    ]);
    const deps = merge.blob.deps ?? [];
    assert.equal(deps.length, 3);
    // sha2-256 (0x12) sorts before blake2b-256 (0xa0e402) in binary CID order.
    assert.equal(deps[0], sha);
    assert.deepEqual(decodeBlob(merge.bytes).blob, merge.blob);

    checkChangeDeps(c1.blob, [g]);
    checkChangeDeps(merge.blob, [c1, c2, { ...c1, cid: sha }]);
    assertBlobError(() => checkChangeDeps(merge.blob, [c1, c2]), M.badShape);
    const stale = createChange(
      { signer: bob.principal, ts: TS, genesis: g.cid, deps: [g.cid], depth: 1 },
      bob.sign,
    );
    assertBlobError(() => checkChangeDeps(stale.blob, [g]), M.badShape);
    const shallow = createChange(
      { signer: bob.principal, ts: TS + 9, genesis: g.cid, deps: [c1.cid], depth: 1 },
      bob.sign,
    );
    assertBlobError(() => checkChangeDeps(shallow.blob, [c1]), M.badShape);
    const otherDoc = createChange({ signer: bob.principal, ts: TS }, bob.sign);
    const wrongGenesis = createChange(
      { signer: bob.principal, ts: TS + 9, genesis: otherDoc.cid, deps: [c1.cid], depth: 2 },
      bob.sign,
    );
    assertBlobError(() => checkChangeDeps(wrongGenesis.blob, [c1]), M.badShape);
  });

  it("refuses a change with only some of genesis, deps and depth", () => {
    const base = { signer: alice.principal, ts: TS + 1 };
    for (const partial of [
      { genesis: g.cid },
      { deps: [g.cid] },
      { depth: 1 },
      { genesis: g.cid, deps: [g.cid] },
      { genesis: g.cid, depth: 1 },
      { deps: [g.cid], depth: 1 },
      { genesis: g.cid, deps: [], depth: 1 },
    ]) {
      assertBlobError(() => createChange({ ...base, ...partial }, alice.sign), M.badShape);
    }
    const handMade = naclSignMap(
      { type: "Change", signer: alice.wire, ts: TS, genesis: CID.decode(g.cidBytes), deps: [] },
      alice.seed,
    );
    assertBlobError(() => decodeBlob(handMade), M.badField);
  });

  it("the home genesis is ts 0 with no body", () => {
    const home = createHomeGenesisChange(bob.principal, bob.sign);
    assert.deepEqual(keysOf(home.bytes), ["sig", "signer", "ts", "type"]);
    assert.equal(home.blob.ts, 0);
    assert.ok(naclVerifyBlob(home.bytes, bob.publicKey));
  });

  it("refuses empty bodies and empty op lists on the wire", () => {
    for (const body of [{}, { ops: [] }, { opCount: 0, ops: [] }, { opCount: 0 }]) {
      const blob = naclSignMap({ type: "Change", signer: alice.wire, ts: TS, body }, alice.seed);
      assertBlobError(() => decodeBlob(blob), M.badField);
    }
  });

  it("accepts what Seed's readers accept inside ops (SDK-shaped change)", () => {
    // Seed's JS SDK writes `parent: ""` for the root and ops Seed's Go readers take as they are.
    const blob = naclSignMap(
      {
        type: "Change",
        signer: alice.wire,
        ts: TS,
        body: {
          ops: [
            { type: "MoveBlocks", blocks: ["b1"], parent: "" },
            { type: "SetKey", key: "title", value: "Old style" },
            { type: "SetAttributes", block: "", attrs: [{ key: ["n"], value: 3 }] },
            { type: "DeleteBlocks", blocks: null },
          ],
          opCount: 4,
        },
      },
      alice.seed,
    );
    const decoded = decodeBlobOfType("Change", blob);
    assert.deepEqual(decoded.blob.body?.ops, [
      { type: "MoveBlocks", blocks: ["b1"] },
      { type: "SetKey", key: "title", value: "Old style" },
      { type: "SetAttributes", attrs: [{ key: ["n"], value: 3 }] },
      { type: "DeleteBlocks", blocks: [] },
    ]);
    // SetKey is read, never written.
    const setKey = { type: "SetKey", key: "title", value: "x" } as never;
    assertBlobError(
      () => createChange({ signer: alice.principal, ts: TS, ops: [setKey] }, alice.sign),
      M.unknownOp,
    );
  });

  it("refuses malformed op content", () => {
    for (const op of [
      { type: "MoveBlocks", blocks: [] },
      { type: "MoveBlocks", blocks: ["b1"], ref: [-1] },
      { type: "MoveBlocks", blocks: ["b1"], ref: ["1"] },
      { type: "ReplaceBlock", block: { text: "no id" } },
      { type: "ReplaceBlock", block: { id: "b1", text: 5 } },
      { type: "ReplaceBlock", block: { id: "b1", annotations: [{ starts: [0] }] } },
      { type: "ReplaceBlock", block: { id: "b1", annotations: [{ type: "B", starts: [0.5] }] } },
      { type: "SetAttributes", attrs: [{ key: ["t"], value: { nested: 1 } }] },
      { type: "SetAttributes", attrs: [{ key: ["t"], value: 1, extra: 1 }] },
      { type: "DeleteBlocks", blocks: [1] },
    ]) {
      const blob = naclSignMap(
        { type: "Change", signer: alice.wire, ts: TS, body: { ops: [op] } },
        alice.seed,
      );
      assert.throws(() => decodeBlob(blob), { name: "BlobError", code: "invalid_argument" });
    }
  });
});

describe("Ref rules", () => {
  const g = createChange({ signer: alice.principal, ts: TS }, alice.sign);

  it("omits empty optionals: space = signer, home path, generation 0, public", () => {
    const ref = createRef(
      {
        signer: alice.principal,
        ts: TS,
        space: alice.principal,
        path: "",
        genesisBlob: g.cid,
        heads: [g.cid],
        generation: 0,
      },
      alice.sign,
    );
    assert.deepEqual(keysOf(ref.bytes), ["genesisBlob", "heads", "sig", "signer", "ts", "type"]);
    assert.equal(refSpace(ref.blob), alice.principal);
    assert.ok(naclVerifyBlob(ref.bytes, alice.publicKey));
    assert.deepEqual(decodeBlob(ref.bytes).blob, ref.blob);
  });

  it("writes every field a delegate's private Ref needs, and a tombstone is heads: []", () => {
    const cap = createCapability(
      { signer: alice.principal, ts: TS, delegate: bob.principal, role: "WRITER", path: "/a" },
      alice.sign,
    );
    const ref = createRef(
      {
        signer: bob.principal,
        ts: TS + 1,
        space: alice.principal,
        path: "/a/b",
        genesisBlob: g.cid,
        capability: cap.cid,
        heads: [g.cid],
        generation: TS,
        visibility: "Private",
      },
      bob.sign,
    );
    assert.ok(naclVerifyBlob(ref.bytes, bob.publicKey));
    const back = decodeBlobOfType("Ref", ref.bytes, ref.cid);
    assert.equal(back.blob.visibility, "Private");
    assert.equal(refSpace(back.blob), alice.principal);
    assert.equal(back.blob.capability, cap.cid);

    const tomb = createRef(
      { signer: alice.principal, ts: TS + 2, path: "/a/b", genesisBlob: g.cid, heads: [] },
      alice.sign,
    );
    const raw = dagCbor.decode(tomb.bytes) as Record<string, unknown>;
    assert.deepEqual(raw.heads, []);
    assert.deepEqual(decodeBlob(tomb.bytes).blob, tomb.blob);

    // Seed's Go writer encodes a tombstone's nil heads as null; still a valid tombstone.
    const goTomb = naclSignMap(
      {
        type: "Ref",
        signer: alice.wire,
        ts: TS,
        path: "/x",
        genesisBlob: CID.decode(g.cidBytes),
        heads: null,
      },
      alice.seed,
    );
    assert.deepEqual(decodeBlobOfType("Ref", goTomb).blob.heads, []);
  });

  it("refuses a home tombstone, a private home document, a redirect with heads", () => {
    const base = { signer: alice.principal, ts: TS, genesisBlob: g.cid };
    assertBlobError(() => createRef({ ...base, heads: [] }, alice.sign), M.badShape);
    assertBlobError(
      () => createRef({ ...base, heads: [g.cid], visibility: "Private" }, alice.sign),
      M.badShape,
    );
    assertBlobError(
      () =>
        createRef({ ...base, path: "/a", heads: [g.cid], redirect: { path: "/b" } }, alice.sign),
      M.badShape,
    );
    const redirect = createRef(
      { ...base, path: "/a", heads: [], redirect: { space: bob.principal, path: "/b" } },
      alice.sign,
    );
    assert.deepEqual(redirect.blob.redirect, { space: bob.principal, path: "/b" });
    const bad = naclSignMap(
      {
        type: "Ref",
        signer: alice.wire,
        ts: TS,
        path: "/x",
        genesisBlob: CID.decode(g.cidBytes),
        heads: [CID.decode(g.cidBytes)],
        visibility: "Public",
      },
      alice.seed,
    );
    assertBlobError(() => decodeBlob(bad), M.badField);
  });
});

describe("Capability rules", () => {
  it("omits empty optionals", () => {
    const cap = createCapability(
      {
        signer: alice.principal,
        ts: TS,
        delegate: bob.principal,
        role: "WRITER",
        path: "",
        label: "",
        noRecursive: false,
      },
      alice.sign,
    );
    assert.deepEqual(keysOf(cap.bytes), ["delegate", "role", "sig", "signer", "ts", "type"]);
    assert.ok(naclVerifyBlob(cap.bytes, alice.publicKey));
  });

  it("refuses an AGENT tied to a path (Seed refuses to index it)", () => {
    assertBlobError(
      () =>
        createCapability(
          { signer: alice.principal, ts: TS, delegate: bob.principal, role: "AGENT", path: "/a" },
          alice.sign,
        ),
      M.badShape,
    );
  });

  it("keeps Seed's audience (an authentication capability's addressee)", () => {
    const cap = createCapability(
      { signer: alice.principal, ts: TS, delegate: alice.principal, audience: bob.principal },
      alice.sign,
    );
    assert.ok(naclVerifyBlob(cap.bytes, alice.publicKey));
    assert.equal(decodeBlobOfType("Capability", cap.bytes).blob.audience, bob.principal);
  });

  it("accepts sha2-256 CIDs (the SDK's) as well as blake2b-256", () => {
    const cap = createCapability(
      { signer: alice.principal, ts: TS, delegate: bob.principal, role: "READER" },
      alice.sign,
    );
    const sha = cidForBytes(cap.bytes, "sha2-256");
    assert.ok(sha.string.startsWith("bafyrei"));
    assert.equal(decodeBlob(cap.bytes, sha.string).cid, sha.string);
    assert.equal(decodeBlob(cap.bytes, sha.bytes).cid, sha.string);
    assert.equal(decodeBlob(cap.bytes).cid, cap.cid);
    assert.ok(cap.cid.startsWith("bafy2bzace"));
  });

  it("refuses invalid builder input without echoing it", () => {
    assertBlobError(
      () => createCapability({ signer: "z6Mk-nope", ts: TS, delegate: bob.principal }, alice.sign),
      M.badField,
    );
    assertBlobError(
      () =>
        createCapability({ signer: alice.principal, ts: 1.5, delegate: bob.principal }, alice.sign),
      M.badField,
    );
  });
});
