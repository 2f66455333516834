import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import * as dagCbor from "@ipld/dag-cbor";
import { DomainError } from "../../src/errors.js";
import {
  CAPABILITIES_HEADER_ERROR_MESSAGE,
  type CapabilityDecoder,
  decodeCapabilitiesHeader,
  encodeCapabilitiesHeader,
  MAX_CAPABILITIES_HEADER_LENGTH,
  MAX_FORWARDED_CAPABILITIES,
  MAX_FORWARDED_CAPABILITY_BYTES,
  readForwardedCapabilities,
} from "../../src/security/forwarded-capabilities.js";

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const blob = (tag: string, size = 200) => {
  const out = new Uint8Array(size);
  out.set(Buffer.from(tag));
  return out;
};

function assertInvalid(header: string): void {
  assert.throws(
    () => decodeCapabilitiesHeader(header),
    (err: unknown) => {
      assert.ok(err instanceof DomainError);
      assert.equal(err.code, "invalid_argument");
      assert.equal(err.message, CAPABILITIES_HEADER_ERROR_MESSAGE);
      return true;
    },
  );
  // readForwardedCapabilities surfaces the same error.
  assert.throws(() => readForwardedCapabilities(header, () => undefined), DomainError);
}

/** A fake verifier: accepts blobs starting with "ok", names them by their hash. */
const decode: CapabilityDecoder = (bytes) => {
  const text = Buffer.from(bytes).toString("latin1");
  if (text.startsWith("throw")) throw new Error("decoder exploded: secret detail");
  if (!text.startsWith("ok")) return undefined;
  const cid = createHash("sha256").update(bytes).digest("hex");
  return { cid, signer: "z6MkSigner", delegate: "z6MkDelegate", role: "READER" };
};

describe("X-Seed-Capabilities header", () => {
  it("absent header is no capabilities; empty array is none", () => {
    assert.deepEqual(decodeCapabilitiesHeader(undefined), []);
    assert.deepEqual(decodeCapabilitiesHeader(encodeCapabilitiesHeader([])), []);
  });

  it("round-trips raw blob bytes in order", () => {
    const blobs = [blob("ok-1"), blob("ok-2", 17), blob("x", 1)];
    const out = decodeCapabilitiesHeader(encodeCapabilitiesHeader(blobs));
    assert.deepEqual(
      out.map((b) => Buffer.from(b)),
      blobs.map((b) => Buffer.from(b)),
    );
  });

  it("drops blobs the decoder refuses or throws on, and duplicates", () => {
    const header = encodeCapabilitiesHeader([
      blob("ok-a"),
      blob("forged"),
      blob("throw"),
      blob("ok-b"),
      blob("ok-a"),
      new Uint8Array(0),
    ]);
    const caps = readForwardedCapabilities(header, decode);
    assert.equal(caps.length, 2);
    assert.notEqual(caps[0]?.cid, caps[1]?.cid);
  });

  it("accepts the limits exactly", () => {
    const many = Array.from({ length: MAX_FORWARDED_CAPABILITIES }, (_, i) => blob(`ok${i}`, 200));
    assert.equal(decodeCapabilitiesHeader(encodeCapabilitiesHeader(many)).length, 32);
    const big = encodeCapabilitiesHeader([blob("ok", MAX_FORWARDED_CAPABILITY_BYTES)]);
    assert.equal(decodeCapabilitiesHeader(big).length, 1);
  });

  it("refuses more than the count cap", () => {
    const many = Array.from({ length: MAX_FORWARDED_CAPABILITIES + 1 }, () => blob("ok", 10));
    assertInvalid(encodeCapabilitiesHeader(many));
  });

  it("refuses an oversized element", () => {
    assertInvalid(encodeCapabilitiesHeader([blob("ok", MAX_FORWARDED_CAPABILITY_BYTES + 1)]));
  });

  it("refuses an oversized header before decoding", () => {
    const blobs = Array.from({ length: 7 }, () => blob("ok", MAX_FORWARDED_CAPABILITY_BYTES));
    const header = encodeCapabilitiesHeader(blobs);
    assert.ok(header.length > MAX_CAPABILITIES_HEADER_LENGTH);
    assertInvalid(header);
    assertInvalid("A".repeat(MAX_CAPABILITIES_HEADER_LENGTH + 4));
  });

  it("refuses non-bytes elements and non-array roots", () => {
    for (const value of [
      [blob("ok"), "ok"],
      [blob("ok"), 1],
      [[blob("ok")]],
      [{ blob: blob("ok") }],
      [null],
      { 0: blob("ok") },
      blob("ok"),
      "ok",
      7,
    ]) {
      assertInvalid(b64(dagCbor.encode(value)));
    }
  });

  it("refuses malformed base64url and CBOR", () => {
    const good = encodeCapabilitiesHeader([blob("ok")]);
    for (const bad of [
      "",
      "A",
      `${good}=`,
      `${good} `,
      good.replace(/^./, "+"),
      `${good.slice(0, -1)}.`,
      b64(Buffer.from([0xff])),
      b64(Buffer.concat([Buffer.from(dagCbor.encode([blob("ok")])), Buffer.from([0])])),
      // Non-minimal array length (0x98 0x01 instead of 0x81).
      b64(
        Buffer.concat([
          Buffer.from([0x98, 0x01]),
          Buffer.from(dagCbor.encode([blob("ok")])).subarray(1),
        ]),
      ),
      // Indefinite-length array.
      b64(
        Buffer.concat([
          Buffer.from([0x9f]),
          Buffer.from(dagCbor.encode([blob("ok")])).subarray(1),
          Buffer.from([0xff]),
        ]),
      ),
    ]) {
      assertInvalid(bad);
    }
  });
});
