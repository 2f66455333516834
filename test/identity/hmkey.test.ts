import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { argon2idAsync } from "@noble/hashes/argon2.js";
import nacl from "tweetnacl";
import { IdentityError, type IdentityErrorCode } from "../../src/identity/errors.js";
import {
  decodeHmkey,
  encodeHmkey,
  HmkeyEncoder,
  readHmkeyFile,
  writeHmkeyFile,
} from "../../src/identity/hmkey.js";
import { publicKeyFromSeed } from "../../src/identity/keys.js";
import { principalToString } from "../../src/identity/principal.js";

const PASSWORD = "correct horse battery staple \u{1F40E}";
const seed = crypto.getRandomValues(new Uint8Array(32));
const seedB64url = Buffer.from(seed).toString("base64url");
const seedHex = Buffer.from(seed).toString("hex");
const principal = principalToString(publicKeyFromSeed(seed));

/** Rejects with an IdentityError of `code` whose message holds no secret. */
async function rejectsWith(p: Promise<unknown>, code: IdentityErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IdentityError, String(err));
    assert.equal(err.code, code, err.message);
    for (const secret of [seedB64url, seedHex, PASSWORD, "wrong password!"]) {
      assert.ok(!err.message.includes(secret), "error message leaks a secret");
    }
    return true;
  });
}

describe(".hmkey.json without a password", () => {
  it("writes base64url of the seed and reads it back", async () => {
    const createTime = new Date("2025-03-04T05:06:07.089Z");
    const json = await encodeHmkey(seed, undefined, { createTime });
    const file = JSON.parse(json);
    assert.deepEqual(Object.keys(file).sort(), ["createTime", "keyB64", "publicKey"]);
    assert.equal(file.keyB64, seedB64url);
    assert.doesNotMatch(file.keyB64, /[=+/]/);
    assert.equal(file.publicKey, principal);
    assert.equal(file.createTime, "2025-03-04T05:06:07.089Z");

    const decoded = await decodeHmkey(json);
    assert.deepEqual(decoded.seed, seed);
    assert.deepEqual(decoded.publicKey, publicKeyFromSeed(seed));
    assert.equal(decoded.createTime, file.createTime);
  });

  it("treats an empty password as none", async () => {
    const file = JSON.parse(await encodeHmkey(seed, ""));
    assert.equal(file.encryption, undefined);
    assert.equal(file.keyB64, seedB64url);
  });

  it("reads standard padded base64, as other Seed tools write it", async () => {
    const json = JSON.stringify({
      createTime: "2026-01-01T00:00:00Z",
      publicKey: principal,
      keyB64: Buffer.from(seed).toString("base64"),
      someFutureField: { ignored: true },
    });
    assert.deepEqual((await decodeHmkey(json, "unused password")).seed, seed);
  });
});

describe(".hmkey.json with a password", () => {
  let json = "";
  before(async () => {
    json = await encodeHmkey(seed, PASSWORD);
  });

  it("records argon2id + XChaCha20-Poly1305 as Seed does and never writes the password or the seed", () => {
    const file = JSON.parse(json);
    assert.equal(file.publicKey, principal);
    assert.deepEqual(Object.keys(file).sort(), ["createTime", "encryption", "keyB64", "publicKey"]);
    assert.deepEqual(Object.keys(file.encryption), ["kdf", "argon2", "cipher"]);
    assert.equal(file.encryption.kdf, "argon2id");
    assert.equal(file.encryption.cipher, "xchacha20poly1305");
    const { argon2 } = file.encryption;
    assert.deepEqual(Object.keys(argon2), ["memoryCost", "timeCost", "parallelism", "saltB64"]);
    assert.deepEqual([argon2.memoryCost, argon2.timeCost, argon2.parallelism], [65536, 3, 4]);
    // Seed writes and reads base64url without padding (Go's RawURLEncoding).
    assert.match(argon2.saltB64, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(Buffer.from(argon2.saltB64, "base64url").length, 16);
    assert.match(file.keyB64, /^[A-Za-z0-9_-]+$/);
    // 24-byte nonce + 32-byte sealed seed + 16-byte tag
    assert.equal(Buffer.from(file.keyB64, "base64url").length, 72);
    assert.ok(!json.includes(PASSWORD));
    assert.ok(!json.includes(seedB64url) && !json.includes(seedHex));
  });

  it("round-trips with the right password", async () => {
    const decoded = await decodeHmkey(json, PASSWORD);
    assert.deepEqual(decoded.seed, seed);
    assert.deepEqual(decoded.publicKey, publicKeyFromSeed(seed));
  });

  it("refuses a wrong password with permission_denied", async () => {
    await rejectsWith(decodeHmkey(json, "wrong password!"), "permission_denied");
  });

  it("asks for the password when none is given", async () => {
    await rejectsWith(decodeHmkey(json), "invalid_argument");
    await rejectsWith(decodeHmkey(json, ""), "invalid_argument");
    await assert.rejects(decodeHmkey(json), /password required/);
  });

  it("refuses cost parameters beyond its bounds before deriving anything", async () => {
    const file = JSON.parse(json);
    for (const [k, v] of [
      ["memoryCost", 4 * 1024 * 1024],
      ["timeCost", 1000],
      ["parallelism", 0],
      ["timeCost", 2.5],
      ["memoryCost", "65536"],
    ] as const) {
      const argon2 = { ...file.encryption.argon2, [k]: v };
      const bad = JSON.stringify({ ...file, encryption: { ...file.encryption, argon2 } });
      await rejectsWith(decodeHmkey(bad, PASSWORD), "invalid_argument");
    }
  });
});

describe("Seed's encrypted .hmkey.json", () => {
  // Seed's own import test (backend/api/daemon/v1alpha/daemon_test.go, writeEncryptedImportKeyFile)
  // has no file literal: it builds the file from fixed inputs. The same inputs, built here with
  // @noble directly rather than through this daemon's code.
  const seedBytes = new Uint8Array(32).map((_, i) => i + 1);
  const password = "correct horse battery staple";
  const salt = new TextEncoder().encode("0123456789abcdef");
  const nonce = new TextEncoder().encode("123456789012345678901234");
  const seedPrincipal = principalToString(nacl.sign.keyPair.fromSeed(seedBytes).publicKey);

  async function seedFile(extra: Record<string, unknown> = {}): Promise<string> {
    const key = await argon2idAsync(password, salt, { t: 3, m: 65536, p: 4, dkLen: 32 });
    const sealed = xchacha20poly1305(key, nonce).encrypt(seedBytes);
    return JSON.stringify({
      // Seed's test file has no createTime (its importer ignores it); Seed's exports always do.
      createTime: "2026-03-17T00:00:00.000Z",
      publicKey: seedPrincipal,
      keyB64: Buffer.concat([nonce, sealed]).toString("base64url"),
      encryption: {
        kdf: "argon2id",
        argon2: {
          memoryCost: 64 * 1024,
          timeCost: 3,
          parallelism: 4,
          saltB64: Buffer.from(salt).toString("base64url"),
        },
        cipher: "xchacha20poly1305",
      },
      ...extra,
    });
  }

  it("decrypts the file Seed's import test builds", async () => {
    const decoded = await decodeHmkey(await seedFile({ profile: { name: "Alice" } }), password);
    assert.deepEqual(decoded.seed, seedBytes);
    assert.equal(principalToString(decoded.publicKey), seedPrincipal);
    await rejectsWith(decodeHmkey(await seedFile(), "wrong password!"), "permission_denied");
  });

  it("writes a file that the same independent construction opens", async () => {
    const file = JSON.parse(await encodeHmkey(seedBytes, password));
    const { argon2 } = file.encryption;
    const key = await argon2idAsync(password, Buffer.from(argon2.saltB64, "base64url"), {
      t: argon2.timeCost,
      m: argon2.memoryCost,
      p: argon2.parallelism,
      dkLen: 32,
    });
    const raw = Buffer.from(file.keyB64, "base64url");
    assert.equal(raw.length, 24 + 32 + 16);
    const opened = xchacha20poly1305(key, raw.subarray(0, 24)).decrypt(raw.subarray(24));
    assert.deepEqual(opened, seedBytes);
    assert.equal(file.publicKey, seedPrincipal);
  });

  it("still imports a file in the format this daemon wrote before", async () => {
    // Written by the previous encodeHmkey: seed 0xa0..0xbf, password "legacy password".
    const legacy = `{
  "createTime": "2025-06-01T12:00:00.000Z",
  "publicKey": "z6Mkjppjwd12cSzdhduNMf3reWgxgkUn7WFM3pnA5f3gFcLj",
  "keyB64": "0o-BMgdwevMJNKrrraKN0H6nGONlV90quDdn6hWDJnTsxGbl39Quy1sICAJlOiYzeTKDhglf7U52J6GDBCxNmArMVHJ11Tf4",
  "encryption": {
    "algorithm": "argon2id+xchacha20poly1305",
    "salt": "HP09u5whnNIcpA1afX2WoA",
    "t": 3,
    "m": 65536,
    "p": 4
  }
}
`;
    const expected = new Uint8Array(32).map((_, i) => 0xa0 + i);
    const decoded = await decodeHmkey(legacy, "legacy password");
    assert.deepEqual(decoded.seed, expected);
    assert.equal(decoded.createTime, "2025-06-01T12:00:00.000Z");
    await rejectsWith(decodeHmkey(legacy, "wrong password!"), "permission_denied");
  });
});

describe("malformed .hmkey.json", () => {
  const good = {
    createTime: "2025-01-01T00:00:00.000Z",
    publicKey: principal,
    keyB64: seedB64url,
  };
  const other = principalToString(publicKeyFromSeed(new Uint8Array(32).fill(7)));
  const encryption = {
    kdf: "argon2id",
    argon2: {
      memoryCost: 65536,
      timeCost: 3,
      parallelism: 4,
      saltB64: Buffer.alloc(16, 1).toString("base64url"),
    },
    cipher: "xchacha20poly1305",
  };
  const legacyEncryption = {
    algorithm: "argon2id+xchacha20poly1305",
    salt: Buffer.alloc(16, 1).toString("base64url"),
    t: 3,
    m: 65536,
    p: 4,
  };
  const cases: Record<string, string> = {
    "not JSON": `{"keyB64":"${seedB64url}"`,
    "an array": JSON.stringify([good]),
    null: "null",
    "a string": JSON.stringify(seedB64url),
    "no createTime": JSON.stringify({ ...good, createTime: undefined }),
    "createTime not a timestamp": JSON.stringify({ ...good, createTime: "yesterday" }),
    "createTime a number": JSON.stringify({ ...good, createTime: 1700000000000 }),
    "createTime impossible date": JSON.stringify({ ...good, createTime: "2025-13-45T99:00:00Z" }),
    "no publicKey": JSON.stringify({ ...good, publicKey: undefined }),
    "publicKey not a principal": JSON.stringify({ ...good, publicKey: "alice" }),
    "no keyB64": JSON.stringify({ ...good, keyB64: undefined }),
    "keyB64 a number array": JSON.stringify({ ...good, keyB64: [...seed] }),
    "keyB64 not base64": JSON.stringify({ ...good, keyB64: `${seedB64url.slice(0, -1)}!` }),
    "keyB64 mixed alphabets": JSON.stringify({ ...good, keyB64: `-+${seedB64url.slice(2)}` }),
    "keyB64 31 bytes": JSON.stringify({
      ...good,
      keyB64: Buffer.from(seed.subarray(1)).toString("base64url"),
    }),
    "keyB64 64 bytes": JSON.stringify({
      ...good,
      keyB64: Buffer.concat([seed, seed]).toString("base64url"),
    }),
    "encryption not an object": JSON.stringify({ ...good, encryption: "argon2id" }),
    "unknown algorithm": JSON.stringify({
      ...good,
      encryption: { ...legacyEncryption, algorithm: "scrypt+aes-gcm" },
    }),
    "unknown encryption member": JSON.stringify({
      ...good,
      encryption: { ...legacyEncryption, aad: "x" },
    }),
    "encrypted keyB64 of the wrong length": JSON.stringify({ ...good, encryption }),
    "legacy encrypted keyB64 of the wrong length": JSON.stringify({
      ...good,
      encryption: legacyEncryption,
    }),
    "unknown kdf": JSON.stringify({ ...good, encryption: { ...encryption, kdf: "scrypt" } }),
    "unknown cipher": JSON.stringify({
      ...good,
      encryption: { ...encryption, cipher: "aes256gcm" },
    }),
    "unknown member in encryption": JSON.stringify({
      ...good,
      encryption: { ...encryption, aad: "x" },
    }),
    "unknown member in argon2": JSON.stringify({
      ...good,
      encryption: { ...encryption, argon2: { ...encryption.argon2, version: 16 } },
    }),
    "argon2 not an object": JSON.stringify({
      ...good,
      encryption: { ...encryption, argon2: "m=65536" },
    }),
    "no saltB64": JSON.stringify({
      ...good,
      encryption: { ...encryption, argon2: { ...encryption.argon2, saltB64: undefined } },
    }),
    "publicKey of another key": JSON.stringify({ ...good, publicKey: other }),
  };
  for (const [name, json] of Object.entries(cases)) {
    it(`rejects ${name} with invalid_argument`, async () => {
      await rejectsWith(decodeHmkey(json, PASSWORD), "invalid_argument");
    });
  }

  it("says so when publicKey does not match the key", async () => {
    await assert.rejects(
      decodeHmkey(cases["publicKey of another key"] ?? ""),
      /publicKey does not match/,
    );
  });

  it("refuses to encode a seed that is not 32 bytes", async () => {
    await rejectsWith(encodeHmkey(new Uint8Array(64)), "invalid_argument");
  });
});

describe("key file I/O", () => {
  const dir = mkdtempSync(join(tmpdir(), "hmkey-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("writes 0600, never overwrites, and reads back", async () => {
    const path = join(dir, "a.hmkey.json");
    const json = await encodeHmkey(seed);
    await writeHmkeyFile(path, json);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await rejectsWith(writeHmkeyFile(path, "{}"), "already_exists");
    assert.equal(await readHmkeyFile(path), json);
  });

  it("does not write through a symlink", async () => {
    const target = join(dir, "target");
    const link = join(dir, "link.hmkey.json");
    symlinkSync(target, link);
    await assert.rejects(writeHmkeyFile(link, "{}"));
    assert.throws(() => statSync(target), { code: "ENOENT" });
  });

  it("reports a missing file as not_found and refuses huge files and directories", async () => {
    await rejectsWith(readHmkeyFile(join(dir, "missing.json")), "not_found");
    const big = join(dir, "big.json");
    writeFileSync(big, Buffer.alloc(65 * 1024, 0x20));
    await rejectsWith(readHmkeyFile(big), "invalid_argument");
    await rejectsWith(readHmkeyFile(dir), "invalid_argument");
  });
});

describe("encoder with explicit argon2id costs (one-time transfer files)", () => {
  it("writes the costs it used, and the daemon's decoder reads the file back", async () => {
    const params = { t: 1, m: 64, p: 1 };
    const encoder = await HmkeyEncoder.create(PASSWORD, { argon2: params });
    try {
      const json = encoder.encode(seed);
      const file = JSON.parse(json);
      assert.deepEqual(file.encryption.argon2, {
        memoryCost: 64,
        timeCost: 1,
        parallelism: 1,
        saltB64: file.encryption.argon2.saltB64,
      });
      assert.deepEqual((await decodeHmkey(json, PASSWORD)).seed, seed);
      await rejectsWith(decodeHmkey(json, "wrong password!"), "permission_denied");
    } finally {
      encoder.dispose();
    }
  });

  it("refuses costs the decoder would refuse", async () => {
    await rejectsWith(
      HmkeyEncoder.create(PASSWORD, { argon2: { t: 0, m: 64, p: 1 } }),
      "invalid_argument",
    );
    await rejectsWith(
      HmkeyEncoder.create(PASSWORD, { argon2: { t: 1, m: 4, p: 1 } }),
      "invalid_argument",
    );
  });
});
