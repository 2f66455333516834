import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import nacl from "tweetnacl";
import { IdentityError } from "../../src/identity/errors.js";
import {
  parseSeedKeyring,
  SEED_KEYRING_ACCOUNT,
  seedKeyringService,
} from "../../src/identity/seed-keyring.js";

const HEADER = Buffer.from([0x08, 0x01, 0x12, 0x40]);

function libp2p(seed: Uint8Array, publicKey = nacl.sign.keyPair.fromSeed(seed).publicKey): string {
  return Buffer.concat([HEADER, seed, publicKey]).toString("base64");
}

function malformed(secret: string, detail: RegExp): void {
  assert.throws(
    () => parseSeedKeyring(secret),
    (err: unknown) => {
      assert.ok(err instanceof IdentityError);
      assert.equal(err.code, "invalid_argument");
      assert.match(err.message, /^Seed's keyring item is malformed: /);
      assert.match(err.message, detail);
      return true;
    },
  );
}

describe("Seed's keyring item", () => {
  test("names: service seed-daemon-main or seed-daemon-dev, account parentCollection", () => {
    assert.equal(seedKeyringService(false), "seed-daemon-main");
    assert.equal(seedKeyringService(true), "seed-daemon-dev");
    assert.equal(SEED_KEYRING_ACCOUNT, "parentCollection");
  });

  test("plain JSON (Go daemon) and go-keyring-base64 (Seed CLI) give the same keys, in order", () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const json = JSON.stringify({ main: libp2p(a), z6MkOther: libp2p(b) });
    for (const secret of [
      json,
      `${json}\n`,
      `go-keyring-base64:${Buffer.from(json).toString("base64")}`,
    ]) {
      const entries = parseSeedKeyring(secret);
      assert.deepEqual(
        entries.map((e) => e.name),
        ["main", "z6MkOther"],
      );
      const [first, second] = entries;
      assert.ok(first?.ok && second?.ok);
      assert.deepEqual(Buffer.from(first.seed), a);
      assert.deepEqual(first.publicKey, nacl.sign.keyPair.fromSeed(a).publicKey);
      assert.deepEqual(Buffer.from(second.seed), b);
    }
    assert.deepEqual(parseSeedKeyring("{}"), []);
  });

  test("each bad entry is reported by name, never quoting its value", () => {
    const seed = randomBytes(32);
    const values: Record<string, unknown> = {
      wrongPub: libp2p(seed, nacl.sign.keyPair.fromSeed(randomBytes(32)).publicKey),
      short: Buffer.concat([HEADER, seed]).toString("base64"),
      rsa: Buffer.concat([Buffer.from([0x08, 0x00, 0x12, 0x40]), seed, seed]).toString("base64"),
      spaces: ` ${libp2p(seed)}`,
      urlsafe: libp2p(seed).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "-"),
      array: [1, 2],
      nil: null,
    };
    const entries = parseSeedKeyring(JSON.stringify(values));
    assert.deepEqual(
      entries.map((e) => [e.name, e.ok ? "ok" : e.problem]),
      [
        ["wrongPub", "the stored public key does not match the private key"],
        ["short", "the value holds 36 bytes, not the 68 of a libp2p Ed25519 private key"],
        ["rsa", "the value is not a libp2p Ed25519 private key (header is not 08 01 12 40)"],
        ["spaces", "the value is not valid base64"],
        ["urlsafe", "the value is not valid base64"],
        ["array", "the value is not a base64 string"],
        ["nil", "the value is not a base64 string"],
      ],
    );
    const text = JSON.stringify(entries);
    assert.ok(!text.includes(seed.toString("base64").slice(0, 16)));
  });

  test("an item that is not a JSON object of keys is refused as a whole, without an echo", () => {
    const secret = randomBytes(24).toString("base64");
    malformed(`{"main": "${secret}"`, /it is not JSON$/);
    malformed(`["${secret}"]`, /not a JSON object/);
    malformed("null", /not a JSON object/);
    malformed(`go-keyring-base64:${secret}!`, /go-keyring-base64: is not base64$/);
    malformed(`go-keyring-base64:${Buffer.from(`x${secret}`).toString("base64")}`, /not JSON$/);
    malformed(`{"a":"${"A".repeat(1024 * 1024)}"}`, /larger than 1 MiB/);
    try {
      parseSeedKeyring(`{"main": "${secret}"`);
    } catch (err) {
      assert.ok(!(err as Error).message.includes(secret));
      assert.equal((err as Error).cause, undefined);
    }
  });
});
