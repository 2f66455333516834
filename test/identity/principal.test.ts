import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { base58btc } from "multiformats/bases/base58";
import { base64 } from "multiformats/bases/base64";
import { IdentityError } from "../../src/identity/errors.js";
import { publicKeyFromSeed } from "../../src/identity/keys.js";
import {
  parsePrincipal,
  principalBytes,
  principalToString,
  publicKeyFromPrincipalBytes,
} from "../../src/identity/principal.js";

const VECTOR_PRINCIPAL = "z6MkqqiSjqcT9NasDUXiymyB8kpgz6h3CNQaghGAoXsaYJ2f";

function isInvalidArgument(err: unknown): boolean {
  return err instanceof IdentityError && err.code === "invalid_argument";
}

describe("principals", () => {
  it("round-trips random keys through z6Mk strings", () => {
    for (let i = 0; i < 32; i++) {
      const pub = publicKeyFromSeed(crypto.getRandomValues(new Uint8Array(32)));
      const s = principalToString(pub);
      assert.match(s, /^z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
      assert.deepEqual(parsePrincipal(s), pub);
    }
  });

  it("encodes the multicodec ed25519-pub varint 0xed 0x01 before the key", () => {
    const pub = parsePrincipal(VECTOR_PRINCIPAL);
    const bytes = principalBytes(pub);
    assert.equal(bytes.length, 34);
    assert.deepEqual([...bytes.subarray(0, 2)], [0xed, 0x01]);
    assert.deepEqual(bytes.subarray(2), pub);
    assert.deepEqual(base58btc.decode(VECTOR_PRINCIPAL), bytes);
    assert.deepEqual(publicKeyFromPrincipalBytes(bytes), pub);
    assert.equal(principalToString(pub), VECTOR_PRINCIPAL);
  });

  it("rejects strings that are not Ed25519 base58btc principals", () => {
    const pub = parsePrincipal(VECTOR_PRINCIPAL);
    const bad = [
      "",
      "z",
      VECTOR_PRINCIPAL.slice(1), // no multibase prefix
      `Z${VECTOR_PRINCIPAL.slice(1)}`, // base58flickr, a different alphabet
      ` ${VECTOR_PRINCIPAL}`,
      `${VECTOR_PRINCIPAL} `,
      `${VECTOR_PRINCIPAL.slice(0, 10)}0${VECTOR_PRINCIPAL.slice(11)}`, // 0 is not base58
      `${VECTOR_PRINCIPAL.slice(0, 10)}l${VECTOR_PRINCIPAL.slice(11)}`, // nor is l
      VECTOR_PRINCIPAL.slice(0, -1), // truncated
      `${VECTOR_PRINCIPAL}1`, // one byte too many
      base64.encode(principalBytes(pub)), // right bytes, wrong base
      base58btc.encode(Uint8Array.of(0xe7, 0x01, ...new Uint8Array(33).fill(2))), // secp256k1-pub
      base58btc.encode(Uint8Array.of(0xed, 0x01, ...pub.subarray(1))), // 31-byte key
      base58btc.encode(Uint8Array.of(0xed, 0x02, ...pub)), // malformed varint
      base58btc.encode(pub), // bare key
      `z${"2".repeat(100_000)}`, // must fail fast, not grind through base58
    ];
    for (const s of bad) {
      assert.throws(() => parsePrincipal(s), isInvalidArgument, s.slice(0, 60));
    }
    assert.throws(() => parsePrincipal(42 as unknown as string), isInvalidArgument);
  });

  it("refuses to encode a public key that is not 32 bytes", () => {
    assert.throws(() => principalToString(new Uint8Array(33)), isInvalidArgument);
    assert.throws(() => publicKeyFromPrincipalBytes(new Uint8Array(34)), isInvalidArgument);
  });
});
