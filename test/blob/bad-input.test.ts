import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as dagCbor from "@ipld/dag-cbor";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import {
  cidForBytes,
  createCapability,
  createChange,
  decodeBlob,
  decodeBlobOfType,
  BLOB_ERROR_MESSAGES as M,
  MAX_BLOB_SIZE,
  parseCid,
  verifyEd25519,
} from "../../src/blob/index.js";
import {
  ABANDON_ABOUT,
  assertBlobError,
  cBytes,
  cText,
  cUint,
  LEGAL_WINNER,
  mnemonicKey,
  naclSignMap,
  naclVerifyBlob,
} from "./helpers.js";

const alice = mnemonicKey(ABANDON_ABOUT);
const bob = mnemonicKey(LEGAL_WINNER);
const TS = 1_700_000_000_000;

function capability() {
  return createCapability(
    { signer: alice.principal, delegate: bob.principal, ts: TS, role: "WRITER" },
    alice.sign,
  );
}

function genesis() {
  return createChange({ signer: alice.principal, ts: TS }, alice.sign);
}

/** A valid Change map (before signing) with one op, for tampering with. */
function changeMap(op: Record<string, unknown>): Record<string, unknown> {
  return {
    type: "Change",
    signer: alice.wire,
    ts: TS,
    body: { opCount: 1, ops: [op] },
  };
}

describe("decodeBlob refuses bad input with a fixed invalid_argument", () => {
  it("malformed CBOR", () => {
    for (const bad of [
      Uint8Array.of(),
      Uint8Array.of(0xa1, 0x61),
      Uint8Array.of(0xff),
      Uint8Array.of(0xbf, 0x61, 0x61, 0x01, 0xff), // indefinite-length map
      Uint8Array.of(0xa1, 0x61, 0x61, 0x18, 0x05), // non-minimal integer
      Uint8Array.of(0xa1, 0x61, 0x61, 0x01, 0x00), // trailing byte
      Uint8Array.of(0x1c, 0x00), // reserved additional information
      Uint8Array.of(0xd8, 0x2a, 0x41, 0x01), // tag 42 that is not a CID
    ]) {
      assertBlobError(() => decodeBlob(bad), M.malformed);
    }
  });

  it("absurdly deep nesting is an error, not a crash", () => {
    const deep = new Uint8Array(MAX_BLOB_SIZE).fill(0x81);
    assertBlobError(() => decodeBlob(deep), M.malformed);
  });

  it("non-canonical CBOR (keys out of order, integral float) even when validly signed", () => {
    const ok = capability();
    const map = dagCbor.decode(ok.bytes) as Record<string, unknown>;
    // Same entries, written by hand in the wrong order ("type" before "ts").
    const entries: Array<[string, number[]]> = [
      ["type", cText("Capability")],
      ["ts", cUint(TS)],
      ["sig", cBytes(map.sig as Uint8Array)],
      ["role", cText("WRITER")],
      ["signer", cBytes(alice.wire)],
      ["delegate", cBytes(bob.wire)],
    ];
    const unsorted = Uint8Array.from([0xa6, ...entries.flatMap(([k, v]) => [...cText(k), ...v])]);
    assertBlobError(() => decodeBlob(unsorted), M.nonCanonical);

    const floatTs = dagCbor.encode({ ...map, ts: 0.5 });
    const patched = Buffer.from(floatTs);
    // dag-cbor writes 0.5 as float64 (fb 3fe0…); make it 1.0 (fb 3ff0…), an integral float,
    // which decodes to the number 1 and so re-encodes as an integer.
    const at = patched.indexOf(Buffer.from("fb3fe0000000000000", "hex"));
    assert.ok(at > 0);
    patched.write("fb3ff0000000000000", at, "hex");
    assertBlobError(() => decodeBlob(new Uint8Array(patched)), M.nonCanonical);
  });

  it("wrong CID, or a CID of another codec, hash or version", () => {
    const a = capability();
    const b = genesis();
    assertBlobError(() => decodeBlob(a.bytes, b.cid), M.cidMismatch);
    assertBlobError(() => decodeBlob(a.bytes, b.cidBytes), M.cidMismatch);
    const sha = cidForBytes(b.bytes, "sha2-256").string;
    assertBlobError(() => decodeBlob(a.bytes, sha), M.cidMismatch);

    const digest = cidForBytes(a.bytes).bytes.subarray(4);
    const raw = CID.createV1(0x55, Digest.create(0xb220, digest)).toString();
    assertBlobError(() => decodeBlob(a.bytes, raw), M.badCid);
    const sha512 = CID.createV1(0x71, Digest.create(0x13, new Uint8Array(64))).toString();
    assertBlobError(() => decodeBlob(a.bytes, sha512), M.badCid);
    const v0 = CID.createV0(Digest.create(0x12, new Uint8Array(32))).toString();
    assertBlobError(() => decodeBlob(a.bytes, v0), M.badCid);
    for (const junk of ["", "bafy", "x".repeat(1000), "zzzz"]) {
      assertBlobError(() => parseCid(junk), M.badCid);
    }
  });

  it("wrong signature", () => {
    const ok = capability();
    const map = dagCbor.decode(ok.bytes) as Record<string, unknown>;
    const sig = new Uint8Array(map.sig as Uint8Array);
    sig[0] = (sig[0] as number) ^ 1;
    assertBlobError(() => decodeBlob(dagCbor.encode({ ...map, sig })), M.badSignature);
    // Signed by Bob but claiming Alice as the signer.
    const forged = naclSignMap({ ...map, sig: undefined }, bob.seed);
    assertBlobError(() => decodeBlob(forged), M.badSignature);
    // A signature field that is not 64 bytes.
    const short = dagCbor.encode({ ...map, sig: new Uint8Array(63) });
    assertBlobError(() => decodeBlob(short), M.badField);
  });

  it("a builder whose signing callback uses the wrong key or returns junk", () => {
    const input = { signer: alice.principal, delegate: bob.principal, ts: TS };
    assertBlobError(() => createCapability(input, bob.sign), M.badSignature);
    assertBlobError(() => createCapability(input, () => new Uint8Array(63)), M.badSignature);
  });

  it("oversized blob", () => {
    assertBlobError(() => decodeBlob(new Uint8Array(MAX_BLOB_SIZE + 1)), M.tooLarge);
    const big = "x".repeat(MAX_BLOB_SIZE);
    const op = { type: "ReplaceBlock" as const, block: { id: "b1", text: big } };
    assertBlobError(
      () => createChange({ signer: alice.principal, ts: TS, ops: [op] }, alice.sign),
      M.tooLarge,
    );
  });

  it("unknown op field, unknown op type, unknown top-level field", () => {
    const extra = naclSignMap(
      changeMap({ type: "DeleteBlocks", blocks: ["b1"], extra: 1 }),
      alice.seed,
    );
    assert.ok(naclVerifyBlob(extra, alice.publicKey));
    assertBlobError(() => decodeBlob(extra), M.unknownField);

    const moveExtra = naclSignMap(
      changeMap({ type: "MoveBlocks", blocks: ["b1"], parent: "", refs: [1] }),
      alice.seed,
    );
    assertBlobError(() => decodeBlob(moveExtra), M.unknownField);

    const unknownOp = naclSignMap(changeMap({ type: "Frobnicate", blocks: ["b1"] }), alice.seed);
    assertBlobError(() => decodeBlob(unknownOp), M.unknownOp);

    const extraTop = naclSignMap(
      { type: "Capability", signer: alice.wire, ts: TS, delegate: bob.wire, scope: "all" },
      alice.seed,
    );
    assertBlobError(() => decodeBlob(extraTop), M.unknownField);

    const badOp = { type: "DeleteBlocks", blocks: ["b1"], extra: 1 } as never;
    assertBlobError(
      () => createChange({ signer: alice.principal, ts: TS, ops: [badOp] }, alice.sign),
      M.unknownField,
    );
  });

  it("unknown blob type, or not the expected one", () => {
    const profile = naclSignMap(
      { type: "Profile", signer: alice.wire, ts: TS, name: "Alice" },
      alice.seed,
    );
    assertBlobError(() => decodeBlob(profile), M.unknownType);
    const noType = naclSignMap({ signer: alice.wire, ts: TS }, alice.seed);
    assertBlobError(() => decodeBlob(noType), M.unknownType);
    const proto = naclSignMap({ type: "__proto__", signer: alice.wire, ts: TS }, alice.seed);
    assertBlobError(() => decodeBlob(proto), M.unknownType);
    assertBlobError(() => decodeBlob(dagCbor.encode(["Change"])), M.badShape);
    assertBlobError(() => decodeBlobOfType("Ref", capability().bytes), M.unknownType);
  });

  it("wrong field types and empty optionals", () => {
    const base = { type: "Capability", signer: alice.wire, ts: TS, delegate: bob.wire };
    for (const bad of [
      { ...base, ts: "1700000000000" },
      { ...base, ts: -1 },
      { ...base, ts: 1.5 },
      { ...base, ts: 2n ** 60n },
      { ...base, signer: alice.wire.subarray(1) },
      { ...base, signer: alice.principal },
      { ...base, delegate: null },
      { ...base, role: "OWNER" },
      { ...base, role: 7 },
      { ...base, path: "" },
      { ...base, label: "" },
      { ...base, label: " padded" },
      { ...base, label: "x".repeat(513) },
      { ...base, exp: 0 },
      { ...base, noRecursive: false },
      { ...base, noRecursive: 1 },
    ]) {
      assertBlobError(() => decodeBlob(naclSignMap(bad, alice.seed)), M.badField);
    }
    const noDelegate = { type: "Capability", signer: alice.wire, ts: TS };
    assertBlobError(() => decodeBlob(naclSignMap(noDelegate, alice.seed)), M.badField);
  });

  it("messages never echo the input", () => {
    const secretish = "SECRET-LOOKING-INPUT";
    const blob = naclSignMap(
      { type: "Capability", signer: alice.wire, ts: TS, delegate: bob.wire, role: secretish },
      alice.seed,
    );
    try {
      decodeBlob(blob, cidForBytes(blob).string);
      assert.fail("expected an error");
    } catch (err) {
      assert.ok(!String((err as Error).message).includes(secretish));
      assert.ok(Object.values(M).includes((err as Error).message as never));
    }
  });

  it("verifyEd25519 treats malformed keys and signatures as invalid", () => {
    const data = new Uint8Array(8);
    const sig = alice.sign(data);
    assert.equal(verifyEd25519(alice.publicKey, data, sig), true);
    assert.equal(verifyEd25519(bob.publicKey, data, sig), false);
    assert.equal(verifyEd25519(new Uint8Array(31), data, sig), false);
    assert.equal(verifyEd25519(alice.publicKey, data, sig.subarray(1)), false);
    // Not a curve point (y = 2 has no x on edwards25519).
    const notAPoint = new Uint8Array(32);
    notAPoint[0] = 2;
    assert.equal(verifyEd25519(notAPoint, data, sig), false);
  });
});
