// Seed compatibility, proven against Seed's own published vectors or against bytes assembled
// here by hand from Seed's field layout; never a round trip through src/blob alone.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import * as dagCbor from "@ipld/dag-cbor";
import { blake2b } from "@noble/hashes/blake2.js";
import nacl from "tweetnacl";
import {
  cidForBytes,
  createCapability,
  createHomeGenesisChange,
  decodeBlob,
} from "../../src/blob/index.js";
import {
  ABANDON_ABOUT,
  cBytes,
  cMap,
  cText,
  cTrue,
  cUint,
  handCid,
  hex,
  LEGAL_WINNER,
  mnemonicKey,
  naclVerifyBlob,
  unhex,
} from "./helpers.js";

// Seed's pinned home genesis vector. Identical values in Seed's
// backend/blob/home_genesis_test.go (TestHomeGenesisMatchesClientSDK) and
// frontend/packages/client/src/home-genesis.test.ts (HOME_GENESIS_GOLDEN), seed-hypermedia/seed
// commit 4d5d96cd983b0a5b1b1bd4713e4e2aed7bf45c47. Key: Seed's shared test fixture account.
const SEED_HOME_GENESIS = {
  mnemonic: LEGAL_WINNER,
  account: "z6MkhMSRCyK9KkAzTmzTKSfuNMaEuYZUJacWmbqiHYkCQgSW",
  privateKey: "563463435d9a4595f604d677ebca9d9f2dbfd067e1ad39371681a18cf9875a63",
  bytes:
    "a462747300637369675840c07500a616d134a9e1f65828df3d106b5d36a88db2bb8d90f958c23b3eb009c455" +
    "298a9fe4b878621fd4791f46603bf632e1bd6ef76dc614a30dae30d93fd50a6474797065664368616e67656673" +
    "69676e65725822ed012b154dea9ea72d6c636ec820845c615f99469bb15d2091048a79c4416c5ffc2b",
  sdkCid: "bafyreibhn2gdntqwdbxbc57nkoyi67zhsmiu4sgwxenfcfucqe2mljn5w4",
  daemonCid: "bafy2bzaceatflan6p5gb3polaggn6znslbr2mfre77anuni6ukxcnzuziy4g2",
};

const BLAKE2B_256_VARINT = [0xa0, 0xe4, 0x02];

describe("home document genesis change (Seed's own vector)", () => {
  const key = mnemonicKey(SEED_HOME_GENESIS.mnemonic);

  it("derives Seed's fixture account", () => {
    assert.equal(hex(key.seed), SEED_HOME_GENESIS.privateKey);
    assert.equal(key.principal, SEED_HOME_GENESIS.account);
  });

  it("is exactly the bytes and blake2b-256 CID Seed's daemon produces", () => {
    const genesis = createHomeGenesisChange(key.principal, key.sign);
    assert.equal(hex(genesis.bytes), SEED_HOME_GENESIS.bytes);
    assert.equal(genesis.cid, SEED_HOME_GENESIS.daemonCid);
    assert.equal(genesis.cid, handCid(BLAKE2B_256_VARINT, blake2b(genesis.bytes, { dkLen: 32 })));
    assert.ok(naclVerifyBlob(genesis.bytes, key.publicKey));
  });

  it("carries the SDK's sha2-256 CID for the same bytes, and decodes under either", () => {
    const bytes = unhex(SEED_HOME_GENESIS.bytes);
    assert.equal(cidForBytes(bytes, "sha2-256").string, SEED_HOME_GENESIS.sdkCid);
    const sha = createHash("sha256").update(bytes).digest();
    assert.equal(handCid([0x12], sha), SEED_HOME_GENESIS.sdkCid);

    for (const cid of [SEED_HOME_GENESIS.sdkCid, SEED_HOME_GENESIS.daemonCid]) {
      const decoded = decodeBlob(bytes, cid);
      assert.equal(decoded.cid, cid);
      assert.deepEqual(
        { ...decoded.blob, sig: undefined },
        { type: "Change", signer: SEED_HOME_GENESIS.account, ts: 0, sig: undefined },
      );
    }
    assert.equal(decodeBlob(bytes).cid, SEED_HOME_GENESIS.daemonCid);
  });

  it("is exactly an empty change: ts 0, sig, type, signer", () => {
    const decoded = dagCbor.decode(unhex(SEED_HOME_GENESIS.bytes)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(decoded).sort(), ["sig", "signer", "ts", "type"]);
  });
});

// Seed publishes no Capability vector with fixed keys (its tests use random keys and
// timestamps), so the expected bytes are assembled here from Seed's layout: BaseBlob
// {type, signer, sig, ts} in backend/blob/blob.go plus Capability {delegate, audience?,
// path?, role?, label?} in backend/blob/blob_capability.go (refmt tags, `omitempty` on all but
// delegate), the same fields frontend/packages/client/src/capability.ts writes; signed over the
// encoding with sig = 64 zero bytes (blob.go Sign); `ts` as integer Unix ms; principals as
// 0xed01 ‖ key. Map keys in DAG-CBOR order: shorter first, then bytewise.
describe("Capability from `abandon … about` to `legal winner …` (hand-assembled CBOR)", () => {
  const issuer = mnemonicKey(ABANDON_ABOUT);
  const delegate = mnemonicKey(LEGAL_WINNER);
  const ts = 1_700_000_000_000;
  const { secretKey } = nacl.sign.keyPair.fromSeed(issuer.seed);

  function expected(fields: (sig: Uint8Array) => Array<[string, number[]]>): Uint8Array {
    const unsigned = Uint8Array.from(cMap(fields(new Uint8Array(64))));
    const sig = nacl.sign.detached(unsigned, secretKey);
    return Uint8Array.from(cMap(fields(sig)));
  }

  it("uses the documented vector keys", () => {
    assert.equal(issuer.principal, "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f");
    assert.equal(delegate.principal, SEED_HOME_GENESIS.account);
  });

  it("with Seed's fields (WRITER, path, label) encodes, signs and hashes as Seed does", () => {
    const want = expected((sig) => [
      ["ts", cUint(ts)],
      ["sig", cBytes(sig)],
      ["path", cText("/notes")],
      ["role", cText("WRITER")],
      ["type", cText("Capability")],
      ["label", cText("Laptop")],
      ["signer", cBytes(issuer.wire)],
      ["delegate", cBytes(delegate.wire)],
    ]);
    const got = createCapability(
      {
        signer: issuer.principal,
        delegate: delegate.principal,
        ts,
        path: "/notes",
        role: "WRITER",
        label: "Laptop",
      },
      issuer.sign,
    );
    assert.equal(hex(got.bytes), hex(want));
    assert.equal(got.cid, handCid(BLAKE2B_256_VARINT, blake2b(want, { dkLen: 32 })));
    assert.ok(got.cid.startsWith("bafy2bzace"));
    assert.ok(naclVerifyBlob(got.bytes, issuer.publicKey));

    // Seed's JS SDK builds the same object (bigint ts, keys omitted when unset) and encodes it
    // with @ipld/dag-cbor: same bytes.
    const sdkShaped = {
      type: "Capability",
      signer: issuer.wire,
      sig: got.blob.sig,
      ts: BigInt(ts),
      delegate: delegate.wire,
      role: "WRITER",
      path: "/notes",
      label: "Laptop",
    };
    assert.equal(hex(dagCbor.encode(sdkShaped)), hex(want));

    const decoded = decodeBlob(want);
    assert.equal(decoded.cid, got.cid);
    assert.deepEqual(decoded.blob, got.blob);
  });

  it("with this daemon's extensions (READER, exp, noRecursive) keeps the same rules", () => {
    const exp = ts + 86_400_000;
    const want = expected((sig) => [
      ["ts", cUint(ts)],
      ["exp", cUint(exp)],
      ["sig", cBytes(sig)],
      ["path", cText("/private/notes")],
      ["role", cText("READER")],
      ["type", cText("Capability")],
      ["signer", cBytes(issuer.wire)],
      ["delegate", cBytes(delegate.wire)],
      ["noRecursive", cTrue],
    ]);
    const got = createCapability(
      {
        signer: issuer.principal,
        delegate: delegate.principal,
        ts,
        path: "/private/notes",
        role: "READER",
        exp,
        noRecursive: true,
        label: "",
      },
      issuer.sign,
    );
    assert.equal(hex(got.bytes), hex(want));
    assert.equal(got.cid, handCid(BLAKE2B_256_VARINT, blake2b(want, { dkLen: 32 })));
    assert.ok(naclVerifyBlob(got.bytes, issuer.publicKey));
    assert.deepEqual(decodeBlob(want, got.cid).blob, got.blob);
  });
});
