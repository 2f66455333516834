import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { IdentityError, type IdentityErrorCode } from "../../src/identity/errors.js";
import {
  decodeHmkey,
  encodeHmkey,
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

  it("records argon2id + XChaCha20-Poly1305 and never writes the password or the seed", () => {
    const file = JSON.parse(json);
    assert.equal(file.publicKey, principal);
    assert.deepEqual(Object.keys(file.encryption).sort(), ["algorithm", "m", "p", "salt", "t"]);
    assert.equal(file.encryption.algorithm, "argon2id+xchacha20poly1305");
    assert.deepEqual([file.encryption.t, file.encryption.m, file.encryption.p], [3, 65536, 4]);
    assert.equal(Buffer.from(file.encryption.salt, "base64url").length, 16);
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
      ["m", 4 * 1024 * 1024],
      ["t", 1000],
      ["p", 0],
      ["t", 2.5],
      ["m", "65536"],
    ] as const) {
      const bad = JSON.stringify({ ...file, encryption: { ...file.encryption, [k]: v } });
      await rejectsWith(decodeHmkey(bad, PASSWORD), "invalid_argument");
    }
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
      encryption: { ...encryption, algorithm: "scrypt+aes-gcm" },
    }),
    "unknown encryption member": JSON.stringify({
      ...good,
      encryption: { ...encryption, aad: "x" },
    }),
    "encrypted keyB64 of the wrong length": JSON.stringify({ ...good, encryption }),
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
