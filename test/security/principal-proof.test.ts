import assert from "node:assert/strict";
import { createPrivateKey, sign as nodeSign, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import * as dagCbor from "@ipld/dag-cbor";
import nacl from "tweetnacl";
import { DomainError } from "../../src/errors.js";
import { principalToString } from "../../src/identity/principal.js";
import {
  encodePrincipalProof,
  MAX_PROOF_HEADER_LENGTH,
  PRINCIPAL_PROOF_ERROR_MESSAGE,
  PROOF_MAX_AGE_MS,
  PROOF_MAX_FUTURE_MS,
  PrincipalProofVerifier,
  principalProofMessage,
} from "../../src/security/principal-proof.js";

const NOW = 1_750_000_000_000;
const ORIGIN = "https://site.example";
const ALLOWED = new Set([ORIGIN, "https://other.example"]);
const ctx = { allowedOrigins: ALLOWED, now: NOW };

const user = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
const USER = principalToString(user.publicKey);
const stranger = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(9));
const STRANGER = principalToString(stranger.publicKey);

function challenge(issuedAt: number | bigint, rand: Uint8Array = randomBytes(24)): Uint8Array {
  const c = Buffer.alloc(32);
  c.writeBigUInt64BE(BigInt(issuedAt), 0);
  c.set(rand, 8);
  return new Uint8Array(c);
}

interface ProofParts {
  challenge: Uint8Array;
  origin: string;
  nonce: Uint8Array;
  sig: Uint8Array;
}

function parts(
  opts: { issuedAt?: number | bigint; origin?: string; secretKey?: Uint8Array } = {},
): ProofParts {
  const c = challenge(opts.issuedAt ?? NOW - 1000);
  const origin = opts.origin ?? ORIGIN;
  const nonce = new Uint8Array(randomBytes(16));
  const sig = nacl.sign.detached(
    principalProofMessage(c, origin, nonce),
    opts.secretKey ?? user.secretKey,
  );
  return { challenge: c, origin, nonce, sig };
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");

function assertUnauthenticated(fn: () => unknown, ...secrets: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DomainError, `not a DomainError: ${String(err)}`);
    assert.equal(err.code, "unauthenticated");
    assert.equal(err.message, PRINCIPAL_PROOF_ERROR_MESSAGE);
    assert.equal(err.cause, undefined);
    for (const s of secrets) if (s.length > 0) assert.ok(!err.message.includes(s));
    return true;
  });
}

describe("principal proof: accepted", () => {
  it("verifies a tweetnacl-signed proof and returns the principal, never the proof", () => {
    const v = new PrincipalProofVerifier();
    const proof = encodePrincipalProof(parts());
    const r = v.verify(USER, proof, ctx);
    assert.equal(r.principal, USER);
    assert.equal(r.origin, ORIGIN);
    assert.equal(r.issuedAt, NOW - 1000);
    assert.deepEqual(Object.keys(r).sort(), ["issuedAt", "origin", "principal"]);
    assert.ok(!JSON.stringify(r).includes(proof));
  });

  it("verifies a node:crypto-signed proof, and tweetnacl agrees with the signature", () => {
    const seed = new Uint8Array(32).fill(3);
    const kp = nacl.sign.keyPair.fromSeed(seed);
    const key = createPrivateKey({
      key: {
        kty: "OKP",
        crv: "Ed25519",
        d: b64(seed),
        x: b64(kp.publicKey),
      },
      format: "jwk",
    });
    const c = challenge(NOW);
    const nonce = new Uint8Array(randomBytes(16));
    const msg = principalProofMessage(c, ORIGIN, nonce);
    const sig = new Uint8Array(nodeSign(null, msg, key));
    assert.ok(nacl.sign.detached.verify(msg, sig, kp.publicKey));
    const p = principalToString(kp.publicKey);
    const r = new PrincipalProofVerifier().verify(
      p,
      encodePrincipalProof({ challenge: c, origin: ORIGIN, nonce, sig }),
      ctx,
    );
    assert.equal(r.principal, p);
  });

  it("accepts the edges of the time window", () => {
    const v = new PrincipalProofVerifier();
    v.verify(USER, encodePrincipalProof(parts({ issuedAt: NOW - PROOF_MAX_AGE_MS })), ctx);
    v.verify(USER, encodePrincipalProof(parts({ issuedAt: NOW + PROOF_MAX_FUTURE_MS })), ctx);
  });

  it("verifyHeaders: both absent is no principal", () => {
    assert.equal(new PrincipalProofVerifier().verifyHeaders(undefined, undefined, ctx), undefined);
  });
});

describe("principal proof: refused", () => {
  const v = new PrincipalProofVerifier();
  const good = parts();
  const goodProof = encodePrincipalProof(good);

  it("principal without proof, proof without principal", () => {
    assertUnauthenticated(() => v.verifyHeaders(USER, undefined, ctx), USER);
    assertUnauthenticated(() => v.verifyHeaders(undefined, goodProof, ctx), goodProof);
  });

  it("proof signed by another key", () => {
    const p = encodePrincipalProof(parts({ secretKey: stranger.secretKey }));
    assertUnauthenticated(() => v.verify(USER, p, ctx), p);
  });

  it("a valid proof under another principal", () => {
    assertUnauthenticated(() => v.verify(STRANGER, goodProof, ctx), goodProof, STRANGER);
  });

  it("tampered challenge, nonce, origin or signature", () => {
    for (const field of ["challenge", "nonce", "sig"] as const) {
      const flipped = Uint8Array.from(good[field]);
      flipped[5] = (flipped[5] as number) ^ 1;
      const t = { ...good, [field]: flipped };
      assertUnauthenticated(() => v.verify(USER, encodePrincipalProof(t), ctx));
    }
    // Signed for one allowed origin, presented as another allowed origin.
    const moved = { ...good, origin: "https://other.example" };
    assertUnauthenticated(() => v.verify(USER, encodePrincipalProof(moved), ctx));
  });

  it("stale and future issue times", () => {
    for (const issuedAt of [
      NOW - PROOF_MAX_AGE_MS - 1,
      NOW + PROOF_MAX_FUTURE_MS + 1,
      0,
      2n ** 64n - 1n,
      BigInt(Number.MAX_SAFE_INTEGER) + 1n,
    ]) {
      const p = encodePrincipalProof(parts({ issuedAt }));
      assertUnauthenticated(() => v.verify(USER, p, ctx));
    }
  });

  it("refuses an origin not in the allowed set, and the built-in origins always", () => {
    const p = encodePrincipalProof(parts({ origin: "https://evil.example" }));
    assertUnauthenticated(() => v.verify(USER, p, ctx));
    // Allowed for one set, refused when the set does not hold it.
    const ok = encodePrincipalProof(parts());
    v.verify(USER, ok, ctx);
    assertUnauthenticated(() =>
      v.verify(USER, ok, { allowedOrigins: new Set(["https://other.example"]), now: NOW }),
    );
    for (const builtIn of ["null", "app://seed"]) {
      const q = encodePrincipalProof(parts({ origin: builtIn }));
      assertUnauthenticated(() =>
        v.verify(USER, q, { allowedOrigins: new Set([builtIn, ORIGIN]), now: NOW }),
      );
    }
    // Exact comparison: no normalisation of what the user signed.
    const upper = encodePrincipalProof(parts({ origin: "https://SITE.example" }));
    assertUnauthenticated(() => v.verify(USER, upper, ctx));
  });

  it("bad principal strings", () => {
    for (const bad of [
      "",
      "z6Mk",
      USER.slice(1),
      `${USER}x`,
      `m${USER.slice(1)}`,
      "z".repeat(65),
      "x".repeat(10_000),
    ]) {
      assertUnauthenticated(() => v.verify(bad, goodProof, ctx), bad);
    }
  });

  it("malformed base64url", () => {
    for (const bad of [
      "",
      `${goodProof}=`,
      `${goodProof}==`,
      goodProof.replace(/^./, "+"),
      goodProof.replace(/^./, "/"),
      ` ${goodProof}`,
      `${goodProof.slice(0, -1)}*`,
      "A",
    ]) {
      assertUnauthenticated(() => v.verify(USER, bad, ctx), bad);
    }
  });

  it("non-canonical base64url tail bits", () => {
    let tested = 0;
    for (const origin of ["https://a.example", "https://ab.example", "https://abc.example"]) {
      const c = { allowedOrigins: new Set([origin]), now: NOW };
      const bytes = dagCbor.encode(parts({ origin }));
      if (bytes.length % 3 === 0) continue;
      const proof = b64(bytes);
      v.verify(USER, proof, c);
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      const last = alphabet.indexOf(proof.at(-1) as string);
      // The lowest bit of the last character is always unused when bytes % 3 !== 0.
      const tweaked = proof.slice(0, -1) + alphabet[last ^ 1];
      assert.deepEqual(Buffer.from(tweaked, "base64url"), Buffer.from(bytes));
      assertUnauthenticated(() => v.verify(USER, tweaked, c));
      tested++;
    }
    assert.ok(tested >= 2);
  });

  it("header over the length cap is refused before decoding", () => {
    const long = "A".repeat(MAX_PROOF_HEADER_LENGTH + 1);
    assertUnauthenticated(() => v.verify(USER, long, ctx));
    const longOrigin = encodePrincipalProof(
      parts({ origin: `https://${"a".repeat(600)}.example` }),
    );
    assertUnauthenticated(() =>
      v.verify(USER, longOrigin, {
        allowedOrigins: new Set([`https://${"a".repeat(600)}.example`]),
        now: NOW,
      }),
    );
  });

  const raw = (value: unknown) => b64(dagCbor.encode(value));

  it("wrong CBOR shapes, types, lengths and extra fields", () => {
    const variants: unknown[] = [
      [good.challenge, good.origin, good.nonce, good.sig],
      "proof",
      42,
      null,
      good.sig,
      { ...good, extra: 1 },
      { challenge: good.challenge, origin: good.origin, nonce: good.nonce },
      { ...good, origin: 7 },
      { ...good, origin: "" },
      { ...good, challenge: b64(good.challenge) },
      { ...good, challenge: good.challenge.slice(0, 31) },
      { ...good, challenge: new Uint8Array([...good.challenge, 0]) },
      { ...good, nonce: good.nonce.slice(0, 15) },
      { ...good, nonce: new Uint8Array(32) },
      { ...good, sig: good.sig.slice(0, 63) },
      { ...good, sig: new Uint8Array([...good.sig, 0]) },
      { ...good, sig: Array.from(good.sig) },
    ];
    for (const value of variants) {
      assertUnauthenticated(() => v.verify(USER, raw(value), ctx));
    }
  });

  it("non-canonical CBOR (unsorted keys, long length, trailing bytes, garbage)", () => {
    const canonical = Buffer.from(dagCbor.encode(good));
    v.verify(USER, b64(canonical), ctx);
    // Keys in insertion order instead of canonical (length-first) order.
    const unsorted = Buffer.concat([
      Buffer.from([0xa4]),
      ...(["challenge", "origin", "nonce", "sig"] as const).map((k) => {
        const entry = Buffer.from(dagCbor.encode({ [k]: good[k] }));
        return entry.subarray(1);
      }),
    ]);
    assert.notDeepEqual(unsorted, canonical);
    assertUnauthenticated(() => v.verify(USER, b64(unsorted), ctx));
    // Map header with a non-minimal length (0xb8 0x04 instead of 0xa4).
    const longHeader = Buffer.concat([Buffer.from([0xb8, 0x04]), canonical.subarray(1)]);
    assertUnauthenticated(() => v.verify(USER, b64(longHeader), ctx));
    assertUnauthenticated(() =>
      v.verify(USER, b64(Buffer.concat([canonical, Buffer.from([0])])), ctx),
    );
    assertUnauthenticated(() => v.verify(USER, b64(canonical.subarray(0, 40)), ctx));
    assertUnauthenticated(() => v.verify(USER, b64(Buffer.from([0xff, 0xff, 0xff])), ctx));
  });
});

describe("principal proof: cache", () => {
  it("a cached proof still expires and still needs its origin allowed", () => {
    const v = new PrincipalProofVerifier();
    const issuedAt = NOW - 1000;
    const proof = encodePrincipalProof(parts({ issuedAt }));
    v.verify(USER, proof, ctx);
    assert.equal(v.cacheSize, 1);
    v.verify(USER, proof, ctx);
    assert.equal(v.cacheSize, 1);
    assertUnauthenticated(() =>
      v.verify(USER, proof, { allowedOrigins: ALLOWED, now: issuedAt + PROOF_MAX_AGE_MS + 1 }),
    );
    assertUnauthenticated(() =>
      v.verify(USER, proof, { allowedOrigins: new Set(["https://other.example"]), now: NOW }),
    );
    // A cached pair never vouches for another principal with the same proof.
    assertUnauthenticated(() => v.verify(STRANGER, proof, ctx));
  });

  it("is bounded and never caches failures", () => {
    const v = new PrincipalProofVerifier({ maxEntries: 3 });
    for (let i = 0; i < 10; i++) v.verify(USER, encodePrincipalProof(parts()), ctx);
    assert.equal(v.cacheSize, 3);
    const w = new PrincipalProofVerifier({ maxEntries: 3 });
    for (let i = 0; i < 5; i++) {
      const bad = encodePrincipalProof(parts({ secretKey: stranger.secretKey }));
      assertUnauthenticated(() => w.verify(USER, bad, ctx));
    }
    assert.equal(w.cacheSize, 0);
    assert.throws(() => new PrincipalProofVerifier({ maxEntries: 0 }), RangeError);
  });
});
